"""Reactions that survive a busy or absent database.

A 👍/👎 reaches the bot once, as a gateway event. If the database is locked by a backup
or PostgreSQL is restarting at that moment, dropping the event would lose the reward for
good. :class:`FeedbackRetrier` instead retries with exponential backoff for a bounded
time (``retry_for``), and when the database is still away it *defers* the reaction: the
recommendation stays unrewarded, the reaction is remembered in memory, and the bot's
periodic reconciliation pass (:meth:`drain`, then a catch-up over Discord's own record
of the reactions) applies it once the database answers again. If the process dies
meanwhile, the start-up catch-up finds the unrewarded recommendation and its reaction.

Retrying is safe because a reward is applied at most once (the storage's conditional
update): a retry whose first attempt did commit answers "already_rewarded".
No Discord here; the bot passes its service's ``feedback``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import StorageUnavailable

log = logging.getLogger("qtune.resilience")

Feedback = Callable[[int, int, bool], Awaitable[Any]]
RETRY_FOR = 30.0  # seconds one reaction is retried before it is deferred
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class FeedbackRetrier:
    """Apply reactions through ``feedback``, riding out :class:`StorageUnavailable`."""

    def __init__(
        self,
        feedback: Feedback,
        *,
        retry_for: float = RETRY_FOR,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._feedback = feedback
        self._stopping = stopping
        """True once the bot shuts down: a retry asleep in its backoff then defers instead
        of trying again (the storage may be closed by the time it wakes)."""
        self.retry_for = float(retry_for)
        self.first_delay = float(first_delay)
        self.max_delay = float(max_delay)
        # (message id, user id) -> liked, for reactions waiting for the database. The
        # first reaction of a user to a message wins, as it does when nothing fails.
        self.deferred: dict[tuple[int, int], bool] = {}
        self._inflight: set[tuple[int, int]] = set()
        self.outage_since: float | None = None
        """Wall-clock time of the first failure of the current outage (None: no outage)."""

    def note_failure(self, exc: BaseException) -> None:
        """Remember that an outage is on (the periodic pass catches up once it ends)."""
        if self.outage_since is None:
            self.outage_since = time.time()
            log.warning("database unavailable, retrying: %s", exc)

    async def apply(self, message_id: int, user_id: int, liked: bool) -> Any | None:
        """The feedback result, or None when the reaction was deferred (or already is)."""
        key = (message_id, user_id)
        if key in self._inflight or key in self.deferred:
            log.debug("reaction on %s by %s: an earlier one is still pending", *key)
            return None
        self._inflight.add(key)
        try:
            return await self._apply(key, liked)
        finally:
            self._inflight.discard(key)

    async def _apply(self, key: tuple[int, int], liked: bool) -> Any | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay = self.first_delay
        while True:
            try:
                return await self._feedback(key[0], key[1], liked)
            except StorageUnavailable as exc:
                self.note_failure(exc)
                if loop.time() + delay > deadline:
                    self._defer(key, liked, logging.WARNING, f"until the database is back: {exc}")
                    return None
            await asyncio.sleep(delay)
            if self._stopping():  # the storage may be closed by now: the catch-up applies it
                self._defer(key, liked, logging.INFO, "to the next start-up (shutting down)")
                return None
            delay = min(delay * 2, self.max_delay)

    def _defer(self, key: tuple[int, int], liked: bool, level: int, until: str) -> None:
        """Keep the reaction for a later pass (the first one per key wins) and say so."""
        self.deferred.setdefault(key, liked)
        log.log(level, "reaction on %s by %s deferred %s", key[0], key[1], until)

    async def drain(self) -> int:
        """Retry every deferred reaction once; return how many were applied.

        Stops at the first one the database still refuses (it stays deferred).
        """
        applied = 0
        for key, liked in list(self.deferred.items()):
            try:
                result = await self._feedback(key[0], key[1], liked)
            except StorageUnavailable as exc:
                self.note_failure(exc)
                log.info("database still unavailable; %d reaction(s) wait", len(self.deferred))
                return applied
            del self.deferred[key]
            if getattr(result, "applied", False):
                applied += 1
                log.info("applied a deferred reaction on %s by %s", *key)
        return applied

    def recovered(self) -> float | None:
        """If an outage is over (nothing deferred), its start time, clearing it; else None."""
        if self.outage_since is None or self.deferred or self._inflight:
            return None
        since, self.outage_since = self.outage_since, None
        return since
