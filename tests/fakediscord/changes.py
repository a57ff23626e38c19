"""Waiting for a condition without polling: a wait re-checks only when what it watches changed.

Each change names what it touched (a message, an interaction, "requests", "gateway");
a waiter registers under one key and is woken by changes to that key or by ``ANY``-waiters'
catch-all. With 800 users each waiting on their own message, a change wakes one waiter,
not all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

ANY = "*"


class Changes:
    """Keyed wake-ups. ``notify(key)`` wakes the waiters of ``key`` and the ``ANY`` waiters."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[None]]] = {}

    def notify(self, *keys: Hashable) -> None:
        for key in (*keys, ANY):
            for fut in self._waiters.pop(key, ()):
                if not fut.done():
                    fut.set_result(None)

    def next_change(self, key: Hashable = ANY) -> asyncio.Future[None]:
        """A future that completes at the next change of ``key``: take it *before* checking."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(fut)
        return fut

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        within: float,
        key: Hashable = ANY,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> Any:
        """Return ``predicate()`` once truthy; re-checked when ``key`` changes.

        Raises ``TimeoutError`` after ``within`` seconds, or as soon as ``give_up()`` is true
        (checked after each change: e.g. the process being watched has exited).
        """

        async def check() -> Any:
            return predicate()

        return await self.wait_for_async(check, within, key, give_up=give_up)

    async def wait_for_async(
        self,
        check: Callable[[], Awaitable[Any]],
        within: float,
        key: Hashable = ANY,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> Any:
        """:meth:`wait_for` with an async check (e.g. a database read)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            woke = self.next_change(key)
            value = await check()
            if value:
                woke.cancel()
                return value
            left = deadline - loop.time()
            if left <= 0 or (give_up is not None and give_up()):
                woke.cancel()
                raise TimeoutError
            try:
                await asyncio.wait_for(woke, left)
            except TimeoutError:
                pass
            finally:
                waiting = self._waiters.get(key)
                if waiting is not None:
                    waiting.discard(woke)
