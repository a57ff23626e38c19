"""One bot process per SQLite file: an exclusive lock file held while the bot runs.

SQLite serves one bot plus operator tools (console, qtable) on the same file, but a
cluster of bot processes must share PostgreSQL, so a second bot on one file is refused
at start with one line. The kernel drops the lock when the process dies (even by
``kill -9``), so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from bot.config import ConfigError


class DatabaseLock:
    """Hold ``take(db_path)`` for the life of the bot; ``release()`` at shutdown."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    @classmethod
    def take(cls, db_path: Path) -> DatabaseLock | None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return None
        path = db_path.with_name(db_path.name + ".bot-lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+")
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"another bot process already runs on {db_path}; several bot processes "
                "need a shared PostgreSQL database (QTUNE_DB=postgresql://…)"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        self._handle.close()
