"""An in-memory implementation of :class:`storage.base.Storage`.

It exists for two reasons: the cog tests run the real service over it (fast, no files),
and, being a second implementation, it keeps the interface honest: the storage contract
tests in ``tests/storage/`` run against it and SQLite alike.

It holds only the storage contract, never a service rule: the reward step, the fresh
table and the genre parsing all come from the caller, exactly as with SQLite.

Atomicity is the event loop's: every read → callback → write below runs without an
``await`` in between, so no other coroutine can interleave. Each call first yields once
(as a real backend's hop to its thread would), so concurrent callers really do race.
Stored values are copied on the way in and out, so a caller's arrays are never shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from bot.engine.qlearning import DEFAULT_GENRES, LearnerState
from storage.base import (
    RatingTally,
    Recommendation,
    RewardOutcome,
    RewardStep,
    SkipReward,
    Storage,
    StorageError,
    UserRecord,
    with_learner,
)
from storage.locks import KeyedLocks

T = TypeVar("T")


@dataclass
class MemoryDatabase:
    """The data a :class:`MemoryStorage` works on; it outlives the storage's ``close``.

    Opening a new storage on the same database is the in-memory form of reopening a
    file: the data is still there, seen through the new storage's genres.
    """

    users: dict[int, UserRecord] = field(default_factory=dict)
    recommendations: dict[int, Recommendation] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    # user id -> [asyncio.Lock, users of it]: shared, so a hold taken through one storage
    # is seen by every storage on the database, as a server's lock would be.
    holds: KeyedLocks = field(default_factory=KeyedLocks)


def _copy(rec: UserRecord) -> UserRecord:
    return replace(rec, learner=rec.learner.copy())


class MemoryStorage(Storage):
    """Users, recommendations and metadata in dictionaries, with the same guarantees."""

    def __init__(
        self, database: MemoryDatabase | None = None, *, genres: Sequence[str] = DEFAULT_GENRES
    ) -> None:
        self.database = database if database is not None else MemoryDatabase()
        self.genres = tuple(genres)
        self._closed = False
        self._holds = self.database.holds

    @classmethod
    async def open(
        cls, database: MemoryDatabase | None = None, *, genres: Sequence[str] = DEFAULT_GENRES
    ) -> MemoryStorage:
        """Mirror of :meth:`SQLiteStorage.open`: a storage over ``database`` (or a new one)."""
        return cls(database, genres=genres)

    async def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------ helpers
    async def _enter(self) -> None:
        """One hop, like a real backend's, then refuse work once closed."""
        await asyncio.sleep(0)
        if self._closed:
            raise StorageError("the database is closed")

    @contextlib.asynccontextmanager
    async def _unheld(self, user_id: int) -> AsyncIterator[None]:
        """Wait until no :meth:`hold_and_update` holds ``user_id``, then enter."""
        if user_id in self._holds:
            async with self._holds.hold(user_id):
                await self._enter()
                yield
        else:
            await self._enter()
            if user_id in self._holds:  # taken while we yielded: wait for it
                async with self._holds.hold(user_id):
                    yield
            else:
                yield

    def _load(self, user_id: int) -> UserRecord | None:
        stored = self.database.users.get(user_id)
        return None if stored is None else _copy(stored)

    def _save(self, rec: UserRecord) -> None:
        rec.updated_at = time.time()
        self.database.users[rec.user_id] = _copy(rec)

    # -------------------------------------------------------------- users
    async def get_user(self, user_id: int) -> UserRecord | None:
        await self._enter()
        return self._load(user_id)

    async def set_current_genre(
        self, user_id: int, genre: str, fresh: Callable[[], UserRecord]
    ) -> UserRecord:
        await self._enter()
        stored = self.database.users.get(user_id)
        if stored is None:
            rec = fresh()
            rec.current_genre = genre
            self._save(rec)
        else:  # as SQLite does: only the genre and the time change, the table stays
            stored.current_genre, stored.updated_at = genre, time.time()
        found = self._load(user_id)
        assert found is not None
        return found

    async def hold_and_update(
        self,
        user_id: int,
        work: Callable[[UserRecord | None], Awaitable[tuple[LearnerState, T]]],
    ) -> T:
        async with self._holds.hold(user_id):
            learner, result = await work(await self.get_user(user_id))
            await self._enter()
            latest = self._load(user_id)
            if latest is None:
                rec = UserRecord.fresh(user_id, self.genres, learner)
            else:
                rec = with_learner(latest, self.genres, learner)
            self._save(rec)
            return result

    async def delete_user(self, user_id: int) -> bool:
        async with self._unheld(user_id):
            recs = self.database.recommendations
            mine = [mid for mid, rec in recs.items() if rec.user_id == user_id]
            for mid in mine:
                del recs[mid]
            had_user = self.database.users.pop(user_id, None) is not None
            return had_user or bool(mine)

    # ---------------------------------------------------- recommendations
    async def add_recommendation(self, rec: Recommendation) -> None:
        await self._enter()
        self.database.recommendations[rec.message_id] = rec  # frozen: no copy needed
        stored = self.database.users.get(rec.user_id)
        if stored is not None:
            stored.current_genre, stored.updated_at = rec.state, time.time()

    async def apply_reward(
        self, message_id: int, user_id: int, step: RewardStep[T]
    ) -> RewardOutcome[T]:
        async with self._unheld(user_id):
            rec = self.database.recommendations.get(message_id)
            if rec is None:
                return RewardOutcome("not_a_recommendation", None)
            if rec.user_id != user_id:
                return RewardOutcome("not_requester", rec)
            if rec.rewarded:
                return RewardOutcome("already_rewarded", rec)
            try:
                reward, user, value = step(rec, self._load(user_id))
            except SkipReward as skip:
                return RewardOutcome(skip.reason, rec)
            self._save(user)
            done = replace(rec, reward=float(reward), rewarded_at=time.time())
            self.database.recommendations[message_id] = done
            return RewardOutcome("applied", done, value)

    async def pending(self, max_age_s: float = 86400, limit: int = 1000) -> list[Recommendation]:
        await self._enter()
        since = time.time() - max_age_s
        found = [
            r
            for r in self.database.recommendations.values()
            if not r.rewarded and r.created_at >= since
        ]
        found.sort(key=lambda r: (r.created_at, r.message_id))
        return found[:limit]

    async def recommendations_of(self, user_id: int) -> list[Recommendation]:
        await self._enter()
        found = [r for r in self.database.recommendations.values() if r.user_id == user_id]
        found.sort(key=lambda r: (round(r.created_at), r.message_id))
        return found

    async def logged_rewards(self, limit: int = 1_000_000) -> list[Recommendation]:
        await self._enter()
        found = [
            r
            for r in self.database.recommendations.values()
            if r.rewarded and r.propensity is not None
        ]
        found.sort(key=lambda r: (r.created_at, r.message_id))
        return found[:limit]

    async def guild_tallies(self, guild_id: int) -> list[RatingTally]:
        await self._enter()
        sums: dict[tuple[int, str], list[float]] = {}
        for r in self.database.recommendations.values():
            if r.guild_id == guild_id and r.rewarded and r.reward is not None:
                cell = sums.setdefault((r.user_id, r.action), [0, 0.0])
                cell[0] += 1
                cell[1] += r.reward
        return [RatingTally(u, a, int(n), total) for (u, a), (n, total) in sorted(sums.items())]

    # ----------------------------------------------------------- metadata
    async def get_meta(self, key: str) -> str | None:
        await self._enter()
        return self.database.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._enter()
        self.database.meta[key] = str(value)
