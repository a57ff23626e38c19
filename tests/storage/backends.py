"""Every storage backend the contract tests run against, built the same way.

A :class:`Backend` owns one database and opens storages on it; opening again is
reopening (a file for SQLite, the same :class:`MemoryDatabase` for memory, the same
database on the session's throwaway server for PostgreSQL), so data written through one
storage must be seen through the next, adapted to its genres.

To add a backend: write a :class:`Backend` subclass and register a factory in
:data:`FACTORIES`. A factory gets the pytest request, so a backend that needs a server
can ask for a session fixture (``request.getfixturevalue``) only when it is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bot.engine.qlearning import DEFAULT_GENRES
from storage.base import Storage
from storage.memory import MemoryDatabase, MemoryStorage
from storage.postgres import PostgresStorage
from storage.sqlite import SQLiteStorage
from tests.pg_server import PgServer


class Backend(ABC):
    """One database of one kind; :meth:`open` may be called many times, even at once."""

    name: str

    def __init__(self) -> None:
        self._opened: list[Storage] = []

    async def open(self, genres: Sequence[str] = DEFAULT_GENRES) -> Storage:
        """A new storage on this backend's database, configured with ``genres``."""
        storage = await self._open(tuple(genres))
        self._opened.append(storage)
        return storage

    @abstractmethod
    async def _open(self, genres: tuple[str, ...]) -> Storage: ...

    async def close(self) -> None:
        """Close every storage opened here (closing twice is allowed), then drop the data."""
        for storage in self._opened:
            await storage.close()
        self._opened.clear()
        self._drop()

    def _drop(self) -> None:  # noqa: B027 - most backends have nothing to drop
        """Remove the database itself."""


def _scratch_folder() -> str | None:
    """tmpfs when there is one: the contract needs real files, not fsyncs (opening and
    closing a file costs ~3 ms there against ~15 ms on disk). Durability has its own
    tests on disk (test_sqlite_crash.py)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="qtune-contract-", dir=_scratch_folder()))
        self.path = self.folder / "qtune.sqlite3"

    async def _open(self, genres: tuple[str, ...]) -> Storage:
        return await SQLiteStorage.open(self.path, genres=genres)

    def _drop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class MemoryBackend(Backend):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.database = MemoryDatabase()

    async def _open(self, genres: tuple[str, ...]) -> Storage:
        return await MemoryStorage.open(self.database, genres=genres)


_EMPTY_TABLES = """DO $$ DECLARE t text; BEGIN
  SELECT string_agg(format('%I', tablename), ', ') INTO t FROM pg_tables
   WHERE schemaname = 'public' AND tablename <> 'qtune_schema';
  IF t IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY CASCADE'; END IF;
END $$"""
_SHARED_DB: dict[int, str] = {}  # id(server) -> the one database the backends reuse


class PostgresBackend(Backend):
    """An empty database on the session's throwaway server (the ``pg_server`` fixture).

    One database is reused with its tables emptied: creating one per test costs ~0.7 s
    and ~8 MB each. (Creating the schema in an empty database is tested in
    test_postgres.py.)
    """

    name = "postgresql"

    def __init__(self, server: PgServer) -> None:
        super().__init__()
        if id(server) not in _SHARED_DB:
            _SHARED_DB[id(server)] = server.create_database("contract")
        self.url = _SHARED_DB[id(server)]
        server.psql(_EMPTY_TABLES, dbname=self.url.rsplit("/", 1)[1])

    async def _open(self, genres: tuple[str, ...]) -> Storage:
        return await PostgresStorage.open(self.url, genres=genres, pool_size=4)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {
    "sqlite": lambda _request: SQLiteBackend(),
    "memory": lambda _request: MemoryBackend(),
    "postgresql": lambda request: PostgresBackend(request.getfixturevalue("pg_server")),
}
BACKENDS = tuple(FACTORIES)


def make_backend(name: str, request: pytest.FixtureRequest) -> Backend:
    """A fresh, empty database of kind ``name``."""
    return FACTORIES[name](request)
