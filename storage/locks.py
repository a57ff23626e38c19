"""A lock per key, created on first use and dropped when its last user leaves.

The embedded backends hold one user's table while ``/simulate`` runs; keying the lock by
user id keeps unrelated users from waiting on each other, and dropping idle entries keeps
the map as small as the set of users being held right now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLocks:
    """``async with locks.hold(key)``; ``key in locks`` tells whether anyone holds or waits."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @contextlib.asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
        """Wait for ``key``'s lock and keep it for the block."""
        lock, users = self._entries.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._entries[key]
