"""SQLiteThread: one connection, used only on its own thread, calls in order."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from storage.sqlite_thread import SQLiteThread


async def test_calls_run_in_order_on_one_thread_off_the_loop(tmp_path: Path) -> None:
    worker = await SQLiteThread.connect(tmp_path / "t.db")
    seen: list[tuple[int, int]] = []

    def op(conn: sqlite3.Connection, i: int) -> int:
        seen.append((i, threading.get_ident()))
        return conn.execute("SELECT ?", (i,)).fetchone()[0]

    try:
        results = await asyncio.gather(*(worker.run(op, worker.conn, i) for i in range(50)))
    finally:
        await worker.close()
    assert results == list(range(50))
    assert [i for i, _ in seen] == list(range(50))  # in the order they were queued
    threads = {t for _, t in seen}
    assert len(threads) == 1
    assert threading.get_ident() not in threads  # never the event loop's thread


async def test_errors_reach_the_caller_and_the_connection_goes_on(tmp_path: Path) -> None:
    worker = await SQLiteThread.connect(tmp_path / "t.db")
    try:
        with pytest.raises(sqlite3.OperationalError):
            await worker.run(worker.conn.execute, "SELECT * FROM missing")
        assert await worker.run(lambda: worker.conn.execute("SELECT 1").fetchone()[0]) == 1
        assert worker.conn.isolation_level is None  # autocommit: transactions are explicit
    finally:
        await worker.close()


async def test_close_closes_the_connection_and_ends_the_thread(tmp_path: Path) -> None:
    worker = await SQLiteThread.connect(tmp_path / "t.db")
    await worker.close()
    with pytest.raises(sqlite3.ProgrammingError):
        worker.conn.execute("SELECT 1")
    with pytest.raises(RuntimeError):  # the thread is gone: no call can queue behind it
        await worker.run(lambda: None)


async def test_a_bad_path_fails_to_connect(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await SQLiteThread.connect(tmp_path / "no" / "such" / "folder" / "t.db")
