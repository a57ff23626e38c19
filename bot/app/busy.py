"""Work in flight that shutdown must wait for (a reward being stored, a reply being sent).

The bot tracks it with a counter and an event, the way python-discord's ``SharedEvent``
does: every holder enters ``hold()``; the tracker is idle when the last one leaves.
It is deliberately not called ``activity``: ``discord.Client.activity`` is the bot's
presence, and overriding it broke both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class InFlight:
    """Counts work in progress; ``wait_idle`` returns once none is left."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._holders: dict[asyncio.Task[Any], int] = {}  # task -> holds it is inside

    @property
    def count(self) -> int:
        """How many holders are inside ``hold()`` now."""
        return self._count

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Mark the block as work that must finish before the storage closes."""
        self._count += 1
        self._idle.clear()
        task = asyncio.current_task()
        if task is not None:
            self._holders[task] = self._holders.get(task, 0) + 1
        try:
            yield
        finally:
            self._count -= 1
            if task is not None:
                left = self._holders.pop(task, 1) - 1
                if left:
                    self._holders[task] = left
            if self._count == 0:
                self._idle.set()

    def cancel(self) -> int:
        """Cancel every task still inside ``hold()`` (shutdown, once the grace is over);
        how many. A storage operation already queued still commits."""
        tasks = [t for t in self._holders if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def wait_idle(self, grace: float) -> bool:
        """Wait until nothing is in flight; False if work is still running after ``grace`` s."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True
