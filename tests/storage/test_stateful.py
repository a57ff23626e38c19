"""Random sequences of what the bot does, against every backend and a plain-Python model.

Hypothesis drives the real :class:`QTuneService` over a backend from ``backends.py``
through recommend (/nowplaying), feedback (also duplicated, racing and in bursts), a
/simulate hold with a reaction and a /nowplaying arriving meanwhile, reset, genre
changes and close/reopen. After every step the backend must agree with :class:`Model`.

The model holds the rules in plain Python: tables keyed by genre *names*, so a genre
change is just a different view; who may reward what and how often; what reset deletes.
The learning arithmetic itself (one TD step, one pretraining chain) is the engine's, whose
own tests specify it: the model calls it on its own copy of each table.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from bot.engine.learners import make_learner
from bot.engine.listeners import resolve_user
from bot.engine.qlearning import LearnerState
from bot.engine.training import run_chain
from bot.service import FeedbackResult, QTuneService
from storage.base import Storage
from tests.storage.backends import BACKENDS, Backend, make_backend

T = TypeVar("T")
USERS = (101, 102, 103)
STRANGER = 999  # reacts to other people's recommendations
START_GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
LEARNER = make_learner("seed")
SIM_USERS = ("generic", "pop_lover", "rock_fan")
Cell = tuple[str, str]  # (state genre, action genre)
EXAMPLES = {"postgresql": 10}
"""Examples per backend (default 25): PostgreSQL's reopen costs a pool's connections."""


@dataclass
class ModelUser:
    """One user's table by genre names; a missing cell is 0."""

    q: dict[Cell, float] = field(default_factory=dict)
    visits: dict[Cell, int] = field(default_factory=dict)
    reward_sum: dict[Cell, float] = field(default_factory=dict)
    epsilon: float = LEARNER.initial_state(2).epsilon
    rewards: int = 0
    current: str | None = None

    def state(self, genres: tuple[str, ...]) -> LearnerState:
        """This table as the engine's arrays, in ``genres`` order."""

        def grid(cells: dict[Cell, Any], dtype: type) -> np.ndarray:
            return np.array([[cells.get((s, a), 0) for a in genres] for s in genres], dtype)

        return LearnerState(
            grid(self.q, float), self.epsilon, grid(self.visits, int), grid(self.reward_sum, float)
        )

    def store(self, st: LearnerState, genres: tuple[str, ...]) -> None:
        """Keep ``st``: a write stores the table as seen through the current genres."""
        cells = [(s, a) for s in genres for a in genres]
        self.q = {c: float(v) for c, v in zip(cells, st.q.ravel(), strict=True)}
        self.visits = {c: int(v) for c, v in zip(cells, st.visits.ravel(), strict=True)}
        self.reward_sum = {c: float(v) for c, v in zip(cells, st.reward_sum.ravel(), strict=True)}
        self.epsilon = float(st.epsilon)


@dataclass(frozen=True)
class ModelRec:
    user_id: int
    state: str
    action: str


class Model:
    """The rules, in plain Python."""

    def __init__(self) -> None:
        self.genres = START_GENRES
        self.users: dict[int, ModelUser] = {}
        self.recs: dict[int, ModelRec] = {}
        self.rewarded: set[int] = set()

    def recommend(self, user_id: int, state: str) -> None:
        self.users.setdefault(user_id, ModelUser()).current = state

    def expected(self, mid: int, user_id: int) -> str:
        """Why a reaction by ``user_id`` to ``mid`` is applied or ignored."""
        rec = self.recs.get(mid)
        if rec is None:
            return "not_a_recommendation"
        if rec.user_id != user_id:
            return "not_requester"
        if mid in self.rewarded:
            return "already_rewarded"
        if rec.state not in self.genres or rec.action not in self.genres:
            return "genre_removed"
        return "applied"

    def reward(self, mid: int, liked: bool) -> None:
        rec = self.recs[mid]
        user = self.users.setdefault(rec.user_id, ModelUser())
        st = user.state(self.genres)
        s, a = self.genres.index(rec.state), self.genres.index(rec.action)
        LEARNER.update(st, s, a, 10.0 if liked else -5.0, a)  # next state = the suggestion
        user.store(st, self.genres)
        user.rewards += 1
        if liked:
            user.current = rec.action
        self.rewarded.add(mid)

    def pretrain(self, user_id: int, spec: str, episodes: int, seed: int) -> None:
        user = self.users.setdefault(user_id, ModelUser())
        st = user.state(self.genres)
        sim = resolve_user(spec, self.genres)
        run_chain(LEARNER, sim, episodes, np.random.default_rng(seed), self.genres, st)
        user.store(st, self.genres)

    def reset(self, user_id: int) -> bool:
        mine = [mid for mid, r in self.recs.items() if r.user_id == user_id]
        for mid in mine:
            del self.recs[mid]
            self.rewarded.discard(mid)
        return self.users.pop(user_id, None) is not None or bool(mine)

    def change_genres(self, genres: tuple[str, ...]) -> None:
        self.genres = genres
        for user in self.users.values():
            if user.current not in genres:
                user.current = None

    def pending(self) -> set[int]:
        return set(self.recs) - self.rewarded


class GatedService(QTuneService):
    """The real service; its CPU work waits for ``gate``, so a test can act mid-hold."""

    def __init__(self, storage: Storage, genres: tuple[str, ...]) -> None:
        super().__init__(storage, genres=genres, learner=LEARNER, rng=np.random.default_rng(0))
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        self.started.set()
        await self.gate.wait()
        return fn(*args, **kwargs)


class StorageMachine(RuleBasedStateMachine):
    """One backend, one model, one event loop per example."""

    new_backend: Callable[[], Backend]
    recs = Bundle("recs")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.Runner()
        self.model = Model()
        self.backend = type(self).new_backend()
        self.service: GatedService
        self.ids = itertools.count(1)
        self.new_genres = (f"Genre{i}" for i in itertools.count(1))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro)

    async def _open(self) -> None:
        storage = await self.backend.open(self.model.genres)
        self.service = GatedService(storage, self.model.genres)

    @initialize()
    def open_storage(self) -> None:
        self.run(self._open())

    def teardown(self) -> None:
        try:
            self.run(self.backend.close())
        finally:
            self.loop.close()

    # ------------------------------------------------------------------ rules
    @rule(target=recs, user=st.sampled_from(USERS), pick=st.integers(0, 20), shout=st.booleans())
    def recommend(self, user: int, pick: int, shout: bool) -> int:
        """/nowplaying: the genre becomes current, the suggestion is recorded."""
        genre = self.model.genres[pick % len(self.model.genres)]
        mid = next(self.ids)

        async def go() -> None:
            s = await self.service.recommend(user, genre.upper() if shout else genre)
            assert s.state == genre
            assert s.action in self.model.genres
            await self.service.record(mid, s, 1, 2)
            self.model.recs[mid] = ModelRec(user, s.state, s.action)

        self.run(go())
        self.model.recommend(user, genre)
        return mid

    def check_result(self, result: FeedbackResult, mid: int, user: int, liked: bool) -> None:
        expected = self.model.expected(mid, user)
        assert result.reason == expected, (mid, user)
        assert result.applied == (expected == "applied")
        if result.applied:
            assert result.reward == (10.0 if liked else -5.0)
            self.model.reward(mid, liked)

    @rule(mid=recs, by_requester=st.booleans(), liked=st.booleans(), twice=st.booleans())
    def feedback(self, mid: int, by_requester: bool, liked: bool, twice: bool) -> None:
        """A reaction, by the requester or a stranger; maybe the same one again."""
        rec = self.model.recs.get(mid)
        user = rec.user_id if by_requester and rec else STRANGER
        for _ in range(2 if twice else 1):
            result = self.run(self.service.feedback(mid, user, liked))
            self.check_result(result, mid, user, liked)

    @rule()
    def feedback_on_an_unknown_message(self) -> None:
        mid = next(self.ids)  # never recorded
        result = self.run(self.service.feedback(mid, USERS[0], True))
        assert result.reason == "not_a_recommendation"

    @rule(mid=recs, likes=st.lists(st.booleans(), min_size=2, max_size=8), stranger=st.booleans())
    def racing_feedback(self, mid: int, likes: list[bool], stranger: bool) -> None:
        """Several reactions to one recommendation at once: at most one applies."""
        rec = self.model.recs.get(mid)
        owner = rec.user_id if rec else USERS[0]
        users = [owner] * len(likes) + ([STRANGER] if stranger else [])
        likes = [*likes, True] if stranger else likes

        async def race() -> list[FeedbackResult]:
            return await asyncio.gather(
                *(self.service.feedback(mid, u, lk) for u, lk in zip(users, likes, strict=True))
            )

        expected = self.model.expected(mid, owner)
        results = self.run(race())
        applied = [r for r in results if r.applied]
        assert len(applied) == (1 if expected == "applied" else 0)
        if stranger:
            assert results[-1].reason == self.model.expected(mid, STRANGER)
        owners = results[: len(users) - stranger]
        if applied:
            [won] = applied
            self.model.reward(mid, won.reward == 10.0)
            assert {r.reason for r in owners if not r.applied} <= {"already_rewarded"}
        else:
            assert {r.reason for r in owners} == {expected}

    @rule(mids=st.lists(recs, min_size=2, max_size=5, unique=True), liked=st.booleans())
    def burst_of_feedback(self, mids: list[int], liked: bool) -> None:
        """Reactions of different users at the same moment."""
        by_user: dict[int, int] = {}
        for mid in mids:
            if mid in self.model.recs:
                by_user.setdefault(self.model.recs[mid].user_id, mid)
        chosen = list(by_user.items())

        async def burst() -> list[FeedbackResult]:
            return await asyncio.gather(*(self.service.feedback(m, u, liked) for u, m in chosen))

        for (user, mid), result in zip(chosen, self.run(burst()), strict=True):
            self.check_result(result, mid, user, liked)

    @rule(
        user=st.sampled_from(USERS),
        spec=st.sampled_from(SIM_USERS),
        episodes=st.integers(1, 200),
        seed=st.integers(0, 2**32),
        react=st.booleans(),
        liked=st.booleans(),
        pick=st.integers(0, 20),
    )
    def simulate_with_a_reaction_meanwhile(
        self, user: int, spec: str, episodes: int, seed: int, react: bool, liked: bool, pick: int
    ) -> None:
        """/simulate holds the user; a reaction waits and lands on top, /nowplaying doesn't."""
        waiting = [m for m in sorted(self.model.pending()) if self.model.recs[m].user_id == user]
        mid = waiting[0] if react and waiting else None
        genre = self.model.genres[pick % len(self.model.genres)]
        now_mid = next(self.ids)
        svc = self.service

        async def go() -> FeedbackResult | None:
            svc.started.clear()
            svc.gate.clear()
            sim = asyncio.create_task(svc.simulate(user, spec, episodes, seed=seed))
            await svc.started.wait()  # the hold is taken and the table read
            reaction = None if mid is None else asyncio.create_task(svc.feedback(mid, user, liked))
            # /nowplaying, suggestion and record (which sets the current genre): never waits
            suggestion = await svc.recommend(user, genre)
            await svc.record(now_mid, suggestion, 1, 2)
            self.model.recs[now_mid] = ModelRec(user, suggestion.state, suggestion.action)
            for _ in range(10):
                await asyncio.sleep(0)
            assert reaction is None or not reaction.done(), "a reward went past the hold"
            svc.gate.set()
            report = await sim
            assert report.episodes == episodes
            return None if reaction is None else await reaction

        result = self.run(go())
        self.model.recommend(user, genre)
        self.model.pretrain(user, spec, episodes, seed)
        if mid is not None:
            assert result is not None
            self.check_result(result, mid, user, liked)

    @rule(user=st.sampled_from(USERS))
    def reset(self, user: int) -> None:
        assert self.run(self.service.reset(user)) == self.model.reset(user)

    @rule(change=st.sampled_from(["add", "remove", "reorder"]), where=st.integers(0, 8),
          order=st.permutations(range(8)))  # fmt: skip
    def change_genres(self, change: str, where: int, order: list[int]) -> None:
        """The operator edits QTUNE_GENRES and restarts: add, remove or reorder one."""
        genres = list(self.model.genres)
        if change == "add" and len(genres) < 8:
            genres.insert(where % (len(genres) + 1), next(self.new_genres))
        elif change == "remove" and len(genres) > 2:
            del genres[where % len(genres)]
        else:
            genres = [genres[i] for i in order if i < len(genres)]
        self.reopen_with(tuple(genres))

    @rule()
    def close_and_reopen(self) -> None:
        self.reopen_with(self.model.genres)

    def reopen_with(self, genres: tuple[str, ...]) -> None:
        self.run(self.service.storage.close())
        self.model.change_genres(genres)
        self.run(self._open())

    # -------------------------------------------------------------- agreement
    @invariant()
    def backend_agrees_with_the_model(self) -> None:
        self.run(self._agree())

    async def _agree(self) -> None:
        storage, model = self.service.storage, self.model
        for user_id in USERS:
            got = await storage.get_user(user_id)
            want = model.users.get(user_id)
            assert (got is None) == (want is None), user_id
            if got is None or want is None:
                continue
            # Storage keeps a table under the genre names it was saved with; the service
            # adapts it to the configured genres (the seed learner's rule: by name).
            st = want.state(got.genres)
            np.testing.assert_allclose(got.learner.q, st.q, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(got.learner.visits, st.visits)
            np.testing.assert_allclose(got.learner.reward_sum, st.reward_sum, rtol=1e-12)
            assert got.learner.epsilon == pytest.approx(want.epsilon, rel=1e-12)
            current = got.current_genre if got.current_genre in model.genres else None
            assert (got.rewards, current) == (want.rewards, want.current)
            view = await self.service.table(user_id)
            assert view.genres == model.genres
            np.testing.assert_allclose(view.q, want.state(model.genres).q, rtol=1e-12, atol=1e-12)
            assert view.current_genre == want.current
        pending = {r.message_id for r in await storage.pending(10**10)}
        assert pending == model.pending()


@pytest.mark.parametrize("kind", BACKENDS)
def test_backend_agrees_with_the_model(kind: str, request: pytest.FixtureRequest) -> None:
    class Machine(StorageMachine):
        @staticmethod
        def new_backend() -> Backend:
            return make_backend(kind, request)

    Machine.__name__ = f"StorageMachine_{kind}"
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES.get(kind, 25),
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
