"""The storage interface: the only thing the service talks to.

Everything here is backend-neutral. A backend (``storage/sqlite.py`` today, perhaps
PostgreSQL later) implements :class:`Storage`; the service and the cogs never see SQL.

Atomicity is expressed with *callbacks*: the service hands the storage a small, pure,
synchronous function (the engine step) and the storage runs read → callback → write
as one transaction. That keeps the rules in the service and the locking in the storage,
and lets a backend run the whole unit in one hop (SQLite) or one ``SELECT … FOR UPDATE``
transaction (PostgreSQL).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

from bot.engine.qlearning import LearnerState
from bot.errors import StorageError, StorageUnavailable

__all__ = [
    "Recommendation",
    "RewardOutcome",
    "RewardStep",
    "SkipReward",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UserRecord",
    "with_learner",
]

T = TypeVar("T")
COPIED_TABLES = ("users", "recommendations")


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One suggestion posted to a user, keyed by the Discord message id. No message text."""

    message_id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    state: str
    action: str
    epsilon: float
    created_at: float
    reward: float | None = None
    rewarded_at: float | None = None
    propensity: float | None = None
    """The probability with which the learner chose ``action`` (None: not logged)."""

    @property
    def rewarded(self) -> bool:
        return self.rewarded_at is not None


@dataclass(slots=True)
class UserRecord:
    """What is stored about one user, with the genre names the table's rows/columns mean."""

    user_id: int
    genres: tuple[str, ...]
    learner: LearnerState
    current_genre: str | None = None
    rewards: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def fresh(cls, user_id: int, genres: Sequence[str], learner: LearnerState) -> UserRecord:
        now = time.time()
        return cls(user_id, tuple(genres), learner, None, 0, now, now)


@dataclass(frozen=True, slots=True)
class RatingTally:
    """One member's rewarded suggestions of one genre in one server (for server statistics)."""

    user_id: int
    action: str
    ratings: int
    reward_sum: float


RewardStatus = Literal["applied", "not_a_recommendation", "not_requester", "already_rewarded"]


@dataclass(frozen=True, slots=True)
class RewardOutcome(Generic[T]):
    """What :meth:`Storage.apply_reward` did. ``value`` is the step's result when applied."""

    status: RewardStatus | str
    recommendation: Recommendation | None
    value: T | None = None


RewardStep = Callable[[Recommendation, UserRecord | None], "tuple[float, UserRecord, T]"]
"""Runs inside the transaction: returns (reward, the updated user record, a result).

It may instead raise :class:`SkipReward` to leave everything unchanged."""


class SkipReward(Exception):
    """Raised by a reward step to abort it without changing anything; carries a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def with_learner(record: UserRecord, genres: Sequence[str], learner: LearnerState) -> UserRecord:
    """``record`` carrying ``learner``, a state the service built for ``genres``.

    The current genre is kept by (case-insensitive) name, or cleared if it is not one of
    ``genres``, so a record never names a table layout it does not have.
    """
    genres = tuple(genres)
    by_fold = {g.casefold(): g for g in genres}
    current = by_fold.get((record.current_genre or "").casefold())
    return replace(record, genres=genres, learner=learner, current_genre=current)


class Storage(ABC):
    """Async persistence of users, recommendations and metadata.

    Every method is safe to call from many coroutines at once. Writes are durable
    (committed) when the awaited call returns.
    """

    genres: tuple[str, ...]
    """The configured genres, which new records get. A stored record comes back with the
    genre names it was saved under: adapting it to changed genres is the learner's rule,
    applied by the service (``Learner.adapt``)."""

    # ---------------------------------------------------------------- users
    @abstractmethod
    async def get_user(self, user_id: int) -> UserRecord | None:
        """The stored record (under the genres it was saved with), or None."""

    @abstractmethod
    async def set_current_genre(
        self, user_id: int, genre: str, fresh: Callable[[], UserRecord]
    ) -> UserRecord:
        """Set only the current genre (creating the user from ``fresh()`` if new).

        Never waits for :meth:`hold_and_update`: it changes no learned value, so a
        long pretraining cannot delay a recommendation.
        """

    @abstractmethod
    async def hold_and_update(
        self,
        user_id: int,
        work: Callable[[UserRecord | None], Awaitable[tuple[LearnerState, T]]],
    ) -> T:
        """Hold the user, await ``work(record)`` (which may take seconds), then store the
        learner state it returns, a state for the configured genres, on the user's
        *latest* record (keeping its current genre, see :func:`with_learner`). Rewards
        and other learner writes for that user wait meanwhile, so none is lost and none
        is overwritten.
        """

    @abstractmethod
    async def delete_user(self, user_id: int) -> bool:
        """Delete the user's table and every recommendation row of theirs."""

    # ---------------------------------------------------------- recommendations
    @abstractmethod
    async def add_recommendation(self, rec: Recommendation) -> None:
        """Store a recommendation (replacing one with the same message id) and make its
        ``state`` the user's current genre, in one transaction, if the user has a table.

        The genre is known the moment the suggestion is shown; writing it here rather
        than before the reply saves a commit (an fsync) on every ``/nowplaying``.
        Like :meth:`set_current_genre`, it never waits for :meth:`hold_and_update`.
        """

    @abstractmethod
    async def apply_reward(
        self, message_id: int, user_id: int, step: RewardStep[T]
    ) -> RewardOutcome[T]:
        """Reward a recommendation at most once, atomically.

        In one transaction: read the recommendation; unless it is missing, not
        ``user_id``'s, or already rewarded, read the user, run ``step``, write the user
        and mark the recommendation rewarded. Waits while ``user_id`` is held.
        """

    @abstractmethod
    async def pending(self, max_age_s: float = 86400, limit: int = 1000) -> list[Recommendation]:
        """Unrewarded recommendations newer than ``max_age_s``, oldest first."""

    @abstractmethod
    async def recommendations_of(self, user_id: int) -> list[Recommendation]:
        """Every recommendation row of ``user_id`` (what /reset deletes), oldest first."""

    @abstractmethod
    async def logged_rewards(self, limit: int = 1_000_000) -> list[Recommendation]:
        """Rewarded recommendations that carry a propensity, oldest first (for offline
        evaluation: ``python -m bot evaluate``)."""

    @abstractmethod
    async def guild_tallies(self, guild_id: int) -> list[RatingTally]:
        """Rewarded recommendations made in ``guild_id``, summed per (member, genre)."""

    # --------------------------------------------------------------- metadata
    @abstractmethod
    async def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Finish queued work and release the database."""

    # ------------------------------------------------------ bulk copy (copy-db)
    # Optional: a backend that implements these can be copied by ``python -m bot copy-db``.
    # Records are exported *as stored* (their own genre list, not adapted), by id order.
    async def export_users(self, after: int | None, limit: int) -> list[UserRecord]:
        """Up to ``limit`` stored users with ids above ``after`` (None: from the start)."""
        raise StorageError(f"{type(self).__name__} cannot be copied")

    async def export_recommendations(self, after: int | None, limit: int) -> list[Recommendation]:
        """Up to ``limit`` recommendations with message ids above ``after``, by id."""
        raise StorageError(f"{type(self).__name__} cannot be copied")

    async def export_meta(self) -> dict[str, str]:
        raise StorageError(f"{type(self).__name__} cannot be copied")

    async def import_rows(
        self,
        users: Sequence[UserRecord],
        recs: Sequence[Recommendation],
        meta: dict[str, str] | None = None,
    ) -> None:
        """Store these rows as they are (replacing same ids), in one transaction."""
        raise StorageError(f"{type(self).__name__} cannot be copied")

    async def counts(self) -> dict[str, int]:
        """Rows per table in :data:`COPIED_TABLES`."""
        raise StorageError(f"{type(self).__name__} cannot be copied")

    async def clear(self) -> None:
        """Delete every user, recommendation and metadata row (``copy-db --force``)."""
        raise StorageError(f"{type(self).__name__} cannot be copied")
