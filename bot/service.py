"""QTuneService: every rule of the bot, in one place (see docs/design.md).

It combines the engine (pure numpy) with the storage (async). Adapters — cogs, console,
CLI — only translate to and from it. The engine steps that change a user's table are
handed to the storage as callbacks, so the storage runs read → step → write atomically.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from bot.config import PARAM_VARIABLES
from bot.engine.community import (
    REWEIGH_REACTIONS,
    CommunityMixture,
    CommunityPrior,
    MemberEvidence,
    community_mixture,
    newcomer_prior,
)
from bot.engine.learners import Learner, make_learner, takes_community_prior
from bot.engine.listeners import BUILTIN_PROFILES, ProfileError, resolve_user
from bot.engine.probing import probe_pick
from bot.engine.qlearning import DEFAULT_GENRES, LearnerState, greedy_policy, validate_genres
from bot.engine.training import TrainingLog, run_chain
from bot.errors import Cancelled, InvalidRequest, UnknownGenre
from bot.explain import explain, liked_count
from bot.profile_files import resolve_profile
from bot.workers import BrokenProcessPool, CpuPool
from storage.base import RatingTally, Recommendation, SkipReward, Storage, UserRecord

T = TypeVar("T")
SIMULATED_USERS: tuple[str, ...] = ("generic", *BUILTIN_PROFILES)
"""The simulated listeners anyone may name. Profile files are for the operator only: a
path from Discord would let any user make the bot read the server's files."""
_SEPARATORS = re.compile(r"[\s_\-]+")


@dataclass(frozen=True)
class Suggestion:
    """Returned by :meth:`QTuneService.recommend`."""

    user_id: int
    state: str
    action: str
    epsilon: float
    reason: str = ""
    """One short line on why this genre (see :mod:`bot.explain`)."""
    explored: bool = False
    """True when the pick was not a best genre of its row (the learner trying something)."""
    propensity: float | None = None
    """The probability with which the learner chose ``action`` (for offline evaluation)."""


@dataclass(frozen=True)
class FeedbackResult:
    """What a reaction did. ``reason`` is "applied" or why it was ignored."""

    applied: bool
    reason: str
    state: str | None = None
    action: str | None = None
    reward: float | None = None
    td_error: float | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class TableView:
    """A read-only view of one user's table; ``policy`` maps state -> best genre."""

    user_id: int
    genres: tuple[str, ...]
    q: np.ndarray
    epsilon: float
    rewards: int
    current_genre: str | None
    policy: dict[str, str]
    learned: bool = True
    """False while nothing was learned (no reaction, no pretraining): the table is the start."""


@dataclass(frozen=True)
class SimulationReport:
    """The outcome of :meth:`QTuneService.simulate`."""

    user: str
    episodes: int
    mean_reward: float
    mean_reward_last_100: float
    rewards: np.ndarray
    policy: dict[str, str]
    table: TableView
    settings: dict[str, float] = field(default_factory=dict)
    """The settings the learner in use really has (:meth:`QTuneService.settings`)."""
    epsilon_final: float | None = None
    """ε after the run, for a learner with an ε schedule; else None."""
    explored_share: float | None = None
    """Share of the run's picks that were not the greedy genre, when the log knows it."""


@dataclass(frozen=True)
class Reaction:
    """One rewarded suggestion in a listener's history."""

    at: float
    state: str
    action: str
    liked: bool


@dataclass(frozen=True)
class UserHistory:
    """What /stats shows a member: their reactions, oldest first, and the table now."""

    reactions: list[Reaction]
    table: TableView
    beliefs: dict[str, str | None]
    """Per current genre, the suggestion the table rates best, or None where it has none."""


@dataclass(frozen=True)
class GenreStat:
    """A server's members and one genre: how many rated it, how many 👍 of how many ratings."""

    genre: str
    members: int
    likes: int
    ratings: int

    @property
    def share(self) -> float:
        return self.likes / self.ratings if self.ratings else 0.0


@dataclass(frozen=True)
class ServerStats:
    """Aggregate figures of one server. ``hidden`` genres had too few raters to show."""

    guild_id: int
    members: int
    genres: list[GenreStat]
    hidden: int
    min_members: int


MIN_MEMBERS_PER_FIGURE = 3
"""A server figure is shown only when at least this many members stand behind it, so no
single member's taste can be read from it (Manage Server sees every figure)."""


def _key(text: str) -> str:
    """Case-, space-, hyphen- and underscore-insensitive form of a genre name."""
    return _SEPARATORS.sub("", text).casefold()


log = logging.getLogger("qtune.service")

MAX_NEWCOMERS = 10_000
"""Newcomers whose taste clusters are kept for re-weighing (oldest dropped first)."""


def community_evidence(
    rows: Sequence[RatingTally], genres: Sequence[str], *, exclude: int | None = None
) -> list[MemberEvidence]:
    """A guild's rated suggestions, summed per (member, genre), as one evidence vector per
    member in ``genres`` order (a removed genre is left out; so is ``exclude``)."""
    index = {g.casefold(): i for i, g in enumerate(genres)}
    by_member: dict[int, MemberEvidence] = {}
    for row in rows:
        i = index.get(row.action.casefold())
        if i is None or row.user_id == exclude:
            continue
        member = by_member.get(row.user_id)
        if member is None:
            n = len(genres)
            member = by_member[row.user_id] = MemberEvidence(np.zeros(n), np.zeros(n))
        member.reactions[i] += row.ratings
        member.reward_sum[i] += row.reward_sum
    return list(by_member.values())


class QTuneService:
    """Recommend, learn from reactions, pretrain, show and delete a user's table."""

    def __init__(
        self,
        storage: Storage,
        *,
        genres: Sequence[str] = DEFAULT_GENRES,
        learner: Learner | None = None,
        like_reward: float = 10.0,
        dislike_reward: float = -5.0,
        community: bool = True,
        max_episodes: int = 100_000,
        rng: np.random.Generator | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self.storage = storage
        self.genres = validate_genres(genres)
        self.like_reward = float(like_reward)
        self.dislike_reward = float(dislike_reward)
        rewards = (self.dislike_reward, self.like_reward)
        self.learner = learner if learner is not None else make_learner(rewards=rewards)
        self.max_episodes = int(max_episodes)
        # The community prior: only for learners that take one (dyna), see _first_table.
        self.community = bool(community) and takes_community_prior(self.learner)
        # Newcomers' taste clusters, for re-weighing their prior after each of their first
        # reactions: in this process's memory only, never stored (see _reweigh).
        self._newcomers: OrderedDict[int, CommunityMixture] = OrderedDict()
        self.rng = rng if rng is not None else np.random.default_rng()
        # Propensities are estimated by drawing (dyna): from their own stream, so that
        # logging them changes no suggestion (spawn() does not advance self.rng).
        self._propensity_rng = self.rng.spawn(1)[0]
        # "hip hop", "hip-hop", "hiphop", "hip_hop" all fold to "hiphop".
        self._by_key = {_key(g): g for g in self.genres}
        # Set at shutdown; running simulations notice it at their next progress call.
        self._stopping = threading.Event()
        # The bot passes a process pool so CPU work never takes the event loop's GIL;
        # without one (tests, console, CLI) it runs in a thread.
        self.cpu = cpu

    def cancel_simulations(self) -> None:
        """Ask running and future simulations to stop, so shutdown never waits on them.

        A cancelled simulation raises :class:`Cancelled` and leaves the table unchanged.
        """
        self._stopping.set()
        if self.cpu is not None:
            self.cpu.terminate()

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run CPU-bound ``fn`` off the event loop: in the worker process when there is one."""
        self._check_stopping(0)
        if self.cpu is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        try:
            return await self.cpu.run(fn, *args, **kwargs)
        except (BrokenProcessPool, RuntimeError, asyncio.CancelledError):
            # The pool was terminated at shutdown: say so, unless this task itself is
            # being cancelled (then the cancellation must propagate).
            task = asyncio.current_task()
            if self._stopping.is_set() and not (task and task.cancelling()):
                self._check_stopping(0)
            raise

    def _check_stopping(self, _done: int) -> None:
        if self._stopping.is_set():
            raise Cancelled(
                "The bot is restarting, so your simulation was stopped. "
                "Your table is unchanged; please try again in a minute."
            )

    # ------------------------------------------------------------- helpers
    def parse_genre(self, text: str) -> str:
        """The configured genre ``text`` names, ignoring case, spaces, hyphens, underscores."""
        genre = self._by_key.get(_key(str(text)))
        if genre is None:
            shown = str(text).strip()[:40]
            raise UnknownGenre(f"Unknown genre {shown!r}. Choose one of: {', '.join(self.genres)}.")
        return genre

    def _fresh(self, user_id: int, prior: CommunityPrior | None = None) -> UserRecord:
        n = len(self.genres)
        if prior is None or not takes_community_prior(self.learner):
            return UserRecord.fresh(user_id, self.genres, self.learner.initial_state(n))
        return UserRecord.fresh(user_id, self.genres, self.learner.initial_state(n, prior=prior))

    async def _first_table_prior(
        self, user_id: int, guild_id: int | None
    ) -> tuple[CommunityPrior, CommunityMixture] | None:
        """The guild's prior and its taste clusters for ``user_id``, who has no table yet
        (None: no guild, the feature off, or nothing to go on).

        The evidence is the guild's rated recommendations summed per member and genre
        (:meth:`Storage.guild_tallies`): it grows as reactions arrive, and ``/reset``,
        which deletes the caller's recommendations, removes exactly their part. Only the
        aggregate reaches the newcomer: the taste clusters of
        :func:`bot.engine.community.community_mixture`, each of at least 3 members.
        """
        if not self.community or guild_id is None:
            return None
        rows = await self.storage.guild_tallies(guild_id)
        low, high = self.dislike_reward, self.like_reward
        evidence = community_evidence(rows, self.genres, exclude=user_id)
        mixture = community_mixture(evidence, low, high)
        if mixture is None:
            return None
        zeros = np.zeros(len(self.genres))
        prior = newcomer_prior(mixture, zeros, zeros, low, high)
        return None if prior is None else (prior, mixture)

    def _first_table(
        self, user_id: int, start: tuple[CommunityPrior, CommunityMixture] | None
    ) -> UserRecord:
        """A new member's table; from a guild's prior, whose clusters are then kept."""
        if start is None:
            return self._fresh(user_id)
        self._newcomers[user_id] = start[1]
        while len(self._newcomers) > MAX_NEWCOMERS:
            self._newcomers.popitem(last=False)
        return self._fresh(user_id, start[0])

    def _reweigh(self, user_id: int, state: LearnerState, before: tuple[np.ndarray, ...]) -> None:
        """After a newcomer's reaction: their prior from the clusters they started from,
        weighed by their own reactions so far (``before``: their per-genre counts and sums
        before this one), so a member unlike the majority is released within a few.

        The clusters live in this process only: after a restart, or for a reaction another
        process handles, the prior simply stays as it was last weighed."""
        mixture = self._newcomers.get(user_id)
        if mixture is None or not takes_community_prior(self.learner):
            return
        if int(state.visits.sum()) >= REWEIGH_REACTIONS:
            del self._newcomers[user_id]
        low, high = self.dislike_reward, self.like_reward
        old = newcomer_prior(mixture, before[0], before[1], low, high)
        new = newcomer_prior(
            mixture, state.visits.sum(axis=0), state.reward_sum.sum(axis=0), low, high
        )
        self.learner.replace_prior(state, old, new)

    def _adapt(self, rec: UserRecord) -> UserRecord:
        """A stored record for the configured genres, if they changed since it was saved.

        Storage keeps a table under the genre names it was saved with; what an added
        genre's values should be is the learner's rule (``Learner.adapt``). The current
        genre is kept by name, or cleared if it was removed.
        """
        by_fold = {g.casefold(): g for g in self.genres}
        current = by_fold.get((rec.current_genre or "").casefold())
        if rec.genres == self.genres:
            # /nowplaying sets only the current genre, so it may name a genre added after
            # the table was written and since removed again.
            return rec if current == rec.current_genre else replace(rec, current_genre=current)
        learner = self.learner.adapt(rec.learner, rec.genres, self.genres)
        return replace(rec, genres=self.genres, learner=learner, current_genre=current)

    def _view(self, user_id: int, rec: UserRecord | None) -> TableView:
        rec = rec or self._fresh(user_id)
        q = rec.learner.q.copy()
        q.setflags(write=False)
        policy = {s: self.genres[a] for s, a in zip(self.genres, greedy_policy(q), strict=True)}
        learned = bool(rec.learner.visits.any())
        return TableView(
            user_id,
            self.genres,
            q,
            rec.learner.epsilon,
            rec.rewards,
            rec.current_genre,
            policy,
            learned,
        )

    # ------------------------------------------------------------- contract
    async def recommend(self, user_id: int, genre: str, guild_id: int | None = None) -> Suggestion:
        """Suggest the next genre from ``genre``.

        Nothing is written for a member who has a table: :meth:`record` makes ``genre``
        their current genre with the suggestion, in one commit. A member's first table
        is made here, in a guild from the guild's taste.
        """
        state = self.parse_genre(genre)
        stored = await self.storage.get_user(user_id)
        if stored is None:
            start = await self._first_table_prior(user_id, guild_id)
            stored = await self.storage.set_current_genre(
                user_id, state, lambda: self._first_table(user_id, start)
            )
        rec = self._adapt(stored)
        s = self.genres.index(state)
        a = self.learner.select(rec.learner, s, self.rng)
        probe = self._probe(user_id, rec.learner)
        # a probe is a function of the member's counts: it is played with probability 1
        propensity = 1.0 if probe is not None else self._propensity(rec.learner, s, a)
        a = a if probe is None else probe
        why = explain(
            self.genres, rec.learner, s, a, like=self.like_reward, dislike=self.dislike_reward
        )
        return Suggestion(
            user_id,
            state,
            self.genres[a],
            float(rec.learner.epsilon),
            why.text,
            why.explored,
            propensity,
        )

    def _probe(self, user_id: int, state: LearnerState) -> int | None:
        """A newcomer's probe (:func:`bot.engine.probing.probe_pick`) while their clusters
        are kept and unsure, else None; the offline ``compare --population`` runs the same."""
        mixture = self._newcomers.get(user_id)
        if mixture is None:
            return None
        counts = state.visits.sum(axis=0), state.reward_sum.sum(axis=0)
        return probe_pick(mixture, *counts, self.dislike_reward, self.like_reward)

    def _propensity(self, learner_state: LearnerState, s: int, a: int) -> float:
        """P(the learner picks ``a`` from ``s``), logged for offline evaluation (dyna: 512
        draws, about 0.2 ms on the event loop, the largest part of the learner's cost per
        /nowplaying; measured with ``benchmarks/e2e_load.py --profile``)."""
        draws = self._propensity_rng
        return float(self.learner.selection_probabilities(learner_state, s, draws)[a])

    async def record(
        self,
        message_id: int,
        suggestion: Suggestion,
        guild_id: int | None,
        channel_id: int | None,
    ) -> None:
        """Remember that ``message_id`` carries ``suggestion`` (no message text is kept);
        its genre becomes the user's current genre."""
        rec = Recommendation(
            int(message_id),
            int(suggestion.user_id),
            guild_id,
            channel_id,
            suggestion.state,
            suggestion.action,
            float(suggestion.epsilon),
            time.time(),
            propensity=suggestion.propensity,
        )
        await self.storage.add_recommendation(rec)

    async def feedback(self, message_id: int, user_id: int, liked: bool) -> FeedbackResult:
        """Apply the requester's first reaction to a recommendation as one TD step."""
        reward = self.like_reward if liked else self.dislike_reward

        def step(rec: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, Any]:
            # Runs inside the storage's transaction: pure and quick.
            if rec.state not in self.genres or rec.action not in self.genres:
                raise SkipReward("genre_removed")
            user = self._adapt(user) if user else self._fresh(user_id)
            s, a = self.genres.index(rec.state), self.genres.index(rec.action)
            before = (user.learner.visits.sum(axis=0), user.learner.reward_sum.sum(axis=0))
            td = self.learner.update(user.learner, s, a, reward, a)  # next state = suggestion
            self._reweigh(user_id, user.learner, before)
            user.rewards += 1
            if liked:
                user.current_genre = rec.action
            return reward, user, (float(td), float(user.learner.epsilon))

        out = await self.storage.apply_reward(message_id, user_id, step)
        rec = out.recommendation
        if out.status != "applied" or rec is None or out.value is None:
            return FeedbackResult(False, out.status)
        td, epsilon = out.value
        return FeedbackResult(True, "applied", rec.state, rec.action, reward, td, epsilon)

    def check_simulation(self, user_spec: str, episodes: int, *, allow_files: bool = False) -> str:
        """The simulated listener to use, or :class:`InvalidRequest` in plain words.

        Adapters call it before they start a cooldown or defer, so a typo costs nothing.
        """
        if isinstance(episodes, bool) or not isinstance(episodes, int):
            raise InvalidRequest(f"episodes must be a whole number, got {episodes!r}")
        if not 1 <= episodes <= self.max_episodes:
            raise InvalidRequest(
                f"episodes must be between 1 and {self.max_episodes:,}; got {episodes:,}."
            )
        if allow_files:
            return user_spec.strip()
        name = user_spec.strip().lower()
        if name not in SIMULATED_USERS:
            raise InvalidRequest(
                f"Unknown simulated listener {user_spec.strip()[:40]!r}. "
                f"Choose one of: {', '.join(SIMULATED_USERS)}."
            )
        return name

    async def simulate(
        self,
        user_id: int,
        user_spec: str,
        episodes: int,
        seed: int | None = None,
        *,
        allow_files: bool = False,
    ) -> SimulationReport:
        """Pretrain the user's stored table in place against a simulated listener.

        ``user_spec`` is one of :data:`SIMULATED_USERS`; only the operator's own tools pass
        ``allow_files=True`` to name a profile file.
        """
        name = self.check_simulation(user_spec, episodes, allow_files=allow_files)
        try:
            if allow_files:  # the operator's tools: a path is read here, outside the engine
                sim = resolve_profile(name, self.genres)
            else:
                sim = resolve_user(name, self.genres)
        except (ProfileError, OSError) as exc:
            raise InvalidRequest(str(exc).splitlines()[0] if str(exc) else "unknown user") from None
        rng = np.random.default_rng(seed if seed is not None else self.rng.integers(2**63))

        async def work(rec: UserRecord | None) -> tuple[LearnerState, TrainingLog]:
            state = (self._adapt(rec) if rec else self._fresh(user_id)).learner.copy()
            args = (self.learner, sim, episodes, rng, self.genres, state)
            if self.cpu is None:  # in a thread: stop cooperatively at shutdown
                log = await self.run_cpu(run_chain, *args, progress=self._check_stopping)
            else:  # in the worker: shutdown kills it
                log = await self.run_cpu(run_chain, *args)
            return log.state, log

        log = await self.storage.hold_and_update(user_id, work)
        view = await self.table(user_id)
        settings = self.settings()
        return SimulationReport(
            sim.name,
            episodes,
            log.mean_reward,
            log.mean_reward_last_100,
            log.rewards,
            view.policy,
            view,
            settings,
            float(view.epsilon) if "epsilon_decay" in settings else None,
            None if log.explored is None else float(np.mean(log.explored)),
        )

    def settings(self) -> dict[str, float]:
        """The settings an operator can give (``QTUNE_ALPHA`` …) that the learner in use has:
        its own parameter class decides (dyna has γ; α and the ε schedule are seed's)."""
        own = self.learner.params.as_dict()
        return {k: float(v) for k, v in own.items() if k in PARAM_VARIABLES}

    async def reset(self, user_id: int) -> bool:
        """Delete the user's table and recommendations (so also their part of every
        guild's community evidence); True if there was anything."""
        self._newcomers.pop(user_id, None)
        return await self.storage.delete_user(user_id)

    async def table(self, user_id: int) -> TableView:
        """The user's table (a fresh one, not stored, for an unknown user)."""
        rec = await self.storage.get_user(user_id)
        return self._view(user_id, self._adapt(rec) if rec else None)

    def _liked(self, reward: float) -> bool:
        """A stored reward counts as a 👍 when it is nearer the like than the dislike reward."""
        return reward > (self.like_reward + self.dislike_reward) / 2

    async def history(self, user_id: int) -> UserHistory:
        """The member's rewarded suggestions, oldest first, and their table now."""
        recs = await self.storage.recommendations_of(user_id)
        reactions = [
            Reaction(r.rewarded_at or r.created_at, r.state, r.action, self._liked(r.reward))
            for r in recs
            if r.reward is not None
        ]
        view = await self.table(user_id)
        beliefs: dict[str, str | None] = {}
        for genre, row in zip(view.genres, view.q, strict=True):
            beliefs[genre] = None if np.allclose(row, row[0]) else view.policy[genre]
        return UserHistory(reactions, view, beliefs)

    async def export(self, user_id: int) -> dict[str, Any]:
        """Everything stored about ``user_id`` (the scope of :meth:`reset`), JSON-ready."""
        rec = await self.storage.get_user(user_id)
        recs = await self.storage.recommendations_of(user_id)
        view = self._view(user_id, rec)
        learner = rec.learner if rec is not None else None
        return {
            "user_id": str(user_id),
            "exported_at": time.time(),
            "genres": list(view.genres),
            "table": None
            if rec is None
            else {
                "q": view.q.tolist(),
                "epsilon": float(view.epsilon),
                "reactions_per_cell": learner.visits.tolist() if learner else None,
                "reward_sum_per_cell": learner.reward_sum.tolist() if learner else None,
                # the learner's working evidence (dyna: forgetting counts, change statistic,
                # a community prior's pseudo-reactions); null when it keeps none
                "working_memory": None
                if learner is None or learner.memory is None
                else learner.memory.tolist(),
                "rewards_applied": int(view.rewards),
                "current_genre": view.current_genre,
                "created_at": rec.created_at,
                "updated_at": rec.updated_at,
            },
            "recommendations": [
                {
                    "message_id": str(r.message_id),
                    "guild_id": None if r.guild_id is None else str(r.guild_id),
                    "channel_id": None if r.channel_id is None else str(r.channel_id),
                    "genre_now": r.state,
                    "suggested": r.action,
                    "created_at": r.created_at,
                    "reward": r.reward,
                    "rewarded_at": r.rewarded_at,
                    "propensity": r.propensity,
                }
                for r in recs
            ],
        }

    async def server_stats(self, guild_id: int, *, every_figure: bool = False) -> ServerStats:
        """Which genres a server's members like, aggregated over members.

        A genre rated by fewer than :data:`MIN_MEMBERS_PER_FIGURE` members is hidden unless
        ``every_figure`` (the caller has Manage Server).
        """
        tallies = await self.storage.guild_tallies(guild_id)
        per_genre: dict[str, list[tuple[int, int]]] = {}
        for t in tallies:
            if t.action not in self.genres:
                continue
            likes = liked_count(t.ratings, t.reward_sum, self.like_reward, self.dislike_reward)
            per_genre.setdefault(t.action, []).append((likes, t.ratings))
        stats = [
            GenreStat(g, len(rows), sum(k for k, _ in rows), sum(n for _, n in rows))
            for g, rows in per_genre.items()
        ]
        shown = [g for g in stats if every_figure or g.members >= MIN_MEMBERS_PER_FIGURE]
        shown.sort(key=lambda g: (-g.share, -g.ratings, g.genre))
        members = len({t.user_id for t in tallies})
        return ServerStats(
            guild_id, members, shown, len(stats) - len(shown), MIN_MEMBERS_PER_FIGURE
        )

    async def pending(self, max_age_s: float = 86400) -> list[Recommendation]:
        """Unrewarded recommendations newer than ``max_age_s`` (start-up catch-up)."""
        return await self.storage.pending(max_age_s)

    async def get_meta(self, key: str) -> str | None:
        return await self.storage.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.storage.set_meta(key, value)
