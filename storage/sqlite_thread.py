"""One stdlib ``sqlite3`` connection that lives on one dedicated thread.

``sqlite3`` calls block, so they must not run on the event loop. The storage needs only
this much: open a connection on a thread of its own, run a plain function of it there
and await the result, close it. (aiosqlite did the same, but the storage had to reach
into its private ``_execute``/``_conn`` to run a whole batch in one hop; owning the
thread keeps that a public, tested part of this project.)

The thread takes calls from a plain queue and hands each result back with
``call_soon_threadsafe``: one hop costs about what aiosqlite's does, and a third of a
``run_in_executor`` round trip (``concurrent.futures`` adds a second future and locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the caller was cancelled; the call itself still ran
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class SQLiteThread:
    """A connection and its one thread; every call on the connection runs there, in order."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="qtune-sqlite", daemon=True)
        self._stopped = False
        self.conn: sqlite3.Connection
        """Use it only inside functions passed to :meth:`run`."""

    @classmethod
    async def connect(cls, path: Path) -> SQLiteThread:
        """Open ``path`` in autocommit mode (transactions are explicit) on a new thread."""
        worker = cls()
        worker._thread.start()
        try:
            worker.conn = await worker.run(sqlite3.connect, path, isolation_level=None)
        except BaseException:
            worker._stop()
            raise
        return worker

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, args, fut = call
            try:
                ok, value = True, fn(*args)
            except BaseException as exc:
                ok, value = False, exc
            # A closed loop (RuntimeError) means nobody is waiting for the answer.
            with contextlib.suppress(RuntimeError):
                fut.get_loop().call_soon_threadsafe(_settle, fut, ok, value)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the connection's thread; calls run in order."""
        if self._stopped:
            raise RuntimeError("the database thread has stopped")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if kwargs:
            self._calls.put((functools.partial(fn, *args, **kwargs), (), fut))
        else:
            self._calls.put((fn, args, fut))
        return await fut

    def _stop(self) -> None:
        self._stopped = True
        self._calls.put(None)

    async def close(self) -> None:
        """Close the connection (on its thread, after queued calls) and end the thread."""
        try:
            await self.run(self.conn.close)
        finally:
            self._stop()
