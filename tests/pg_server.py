"""A throwaway PostgreSQL server for the tests and the benchmarks.

``PgServer.start()`` runs ``initdb --no-sync`` into a fresh temp folder and ``pg_ctl
start`` on 127.0.0.1 with a free port (``fsync=off``: nothing here must survive a power
cut). ``initdb`` and ``postgres`` refuse to run as root, so as root both run as the
``postgres`` user. The server is stopped by the pid in its ``postmaster.pid``: at
``stop()``, at interpreter exit (atexit), and, for a server left behind by a killed
run, by the next run's :func:`reap_leftovers` (each folder records its owner's pid).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PREFIX = "qtune-pg-"
OWNER_FILE = "owner.pid"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: $QTUNE_PG_BIN, Debian's, or the PATH's.

    A set ``QTUNE_PG_BIN`` is the only place looked at (None if the binaries are not
    there): an operator who names a folder means that one, and the fixture's own test
    points it at an empty folder to see the skip and the ``QTUNE_REQUIRE_PG`` failure.
    """
    if os.environ.get("QTUNE_PG_BIN"):
        folder = Path(os.environ["QTUNE_PG_BIN"])
        found = (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()
        return folder if found else None
    candidates = []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    candidates += [Path(p).parent for p in reversed(versions)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> dict:
    """subprocess arguments that run a command as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _kill_server(data: Path, timeout: float = 10.0) -> None:
    """Fast shutdown (SIGINT) by pid, then immediate (SIGQUIT), then SIGKILL."""
    pid = _postmaster_pid(data)
    if pid is None or not _pid_alive(pid):
        return
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 3.0), (signal.SIGKILL, 3.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not _pid_alive(pid) or _postmaster_pid(data) is None:
                return
            time.sleep(0.02)


def reap_leftovers() -> int:
    """Stop servers and remove folders of earlier runs whose owner process is gone."""
    reaped = 0
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = None
        if owner is not None and _pid_alive(owner):  # a live run's (or our own) server
            continue
        if owner is None and time.time() - folder.stat().st_mtime < 60:
            continue  # just created by a run that has not written its owner file yet
        _kill_server(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)
        reaped += 1
    return reaped


class PgServer:
    """One throwaway server: ``start()``, ``create_database()``, ``url()``, ``stop()``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.data = self.root / "data"
        self.port = 0
        self._dbs = 0

    def _run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            **_as_server_user(),
            **kwargs,
        )

    def start(self, extra: tuple[str, ...] = ("fsync=off",)) -> PgServer:
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        atexit.register(self.stop)
        self._run(
            self.bindir / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"
        )
        self.port = free_port()
        self.settings = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c max_connections=300 " + " ".join(f"-c {s}" for s in extra)
        )
        self.pg_ctl_start()
        return self

    def pg_ctl_start(self) -> None:
        """(Re)start on the same port and data (used by the outage tests too)."""
        self._run(
            self.bindir / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "log",
            "-w",
            "-o",
            self.settings,
            "start",
        )

    def pg_ctl_stop(self, mode: str = "fast") -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres", *, unix: bool = False) -> str:
        """TCP on 127.0.0.1, or (``unix``) the server's unix socket in its folder."""
        if unix:
            return f"postgresql://postgres@/{dbname}?host={self.root}&port={self.port}"
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = self._run(
            self.bindir / "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            dbname,
            "-Atqc",
            sql,
        )
        return out.stdout

    def create_database(self, prefix: str = "t", *, unix: bool = False) -> str:
        """A new empty database; returns its URL."""
        self._dbs += 1
        name = f"{prefix}_{os.getpid()}_{self._dbs}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name, unix=unix)

    def stop(self) -> None:
        if self.data.exists():
            _kill_server(self.data)
        shutil.rmtree(self.root, ignore_errors=True)
