"""Which backend a ``QTUNE_DB`` value means, and opening it.

A path is an embedded SQLite file (the default); ``postgresql://…`` or ``postgres://…``
is a PostgreSQL server through asyncpg. The backends are imported only when used, so a
SQLite-only install never loads asyncpg.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.engine.qlearning import DEFAULT_GENRES
from storage.base import Storage, StorageError

URL_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: object) -> bool:
    """True for ``postgresql://…`` and ``postgres://…``."""
    scheme, sep, _ = str(target).partition("://")
    return bool(sep) and scheme.lower() in URL_SCHEMES


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
    except ValueError:
        return "postgresql://…"


def check_target(target: str) -> str:
    """``target`` if it names a database; else a one-line :class:`StorageError`."""
    if "://" not in target:
        return target
    if not is_postgres_url(target):
        raise StorageError(f"{safe_url(target)!r} is neither a file path nor a postgresql:// URL")
    try:
        parts = urlsplit(target)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise StorageError(f"{safe_url(target)!r} is not a valid URL: {exc}") from None
    if not parts.path.strip("/"):
        raise StorageError(
            f"{safe_url(target)!r} names no database; "
            "use postgresql://user[:password]@host[:port]/dbname"
        )
    return target


def describe(target: str | os.PathLike) -> str:
    """How to show a database target to an operator (never with its password)."""
    return safe_url(str(target)) if is_postgres_url(target) else str(target)


async def open_storage(
    target: str | os.PathLike,
    *,
    genres: Sequence[str] = DEFAULT_GENRES,
    synchronous: str = "FULL",
) -> Storage:
    """Open (creating and migrating if needed) the database ``target`` names.

    ``synchronous`` is SQLite's (FULL or NORMAL); a PostgreSQL server has its own
    ``synchronous_commit``, which its operator sets.
    """
    if is_postgres_url(target):
        from storage.postgres import PostgresStorage

        return await PostgresStorage.open(check_target(str(target)), genres=genres)
    from storage.sqlite import SQLiteStorage

    return await SQLiteStorage.open(Path(target), genres=genres, synchronous=synchronous)
