"""Atomic feedback under concurrency, on a real SQLite file, through the service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.service import QTuneService, Suggestion
from storage.base import Recommendation, UserRecord
from storage.sqlite import SQLiteStorage

USER = 4242


@pytest.fixture
async def service(tmp_path: Path):
    st = await SQLiteStorage.open(tmp_path / "c.db")
    yield QTuneService(st, learner=make_learner("seed"), rng=np.random.default_rng(0))
    await st.close()


async def record_many(service: QTuneService, n: int, first_id: int = 1) -> list[int]:
    ids = list(range(first_id, first_id + n))
    genres = service.genres
    await asyncio.gather(
        *(
            service.record(mid, Suggestion(USER, genres[i % 5], genres[(i * 3) % 5], 1.0), 1, 2)
            for i, mid in enumerate(ids)
        )
    )
    return ids


async def test_500_concurrent_feedbacks_for_one_user(service: QTuneService) -> None:
    ids = await record_many(service, 500)
    results = await asyncio.gather(*(service.feedback(mid, USER, True) for mid in ids))
    assert all(r.applied for r in results)
    view = await service.table(USER)
    assert view.rewards == 500
    rewarded = [await service.storage.get_recommendation(mid) for mid in ids]
    assert all(r is not None and r.reward == 10.0 for r in rewarded)
    assert await service.pending() == []
    user = await service.storage.get_user(USER)
    assert user is not None
    assert int(user.learner.visits.sum()) == 500  # every update landed, none overwritten
    assert float(user.learner.reward_sum.sum()) == 5000.0
    assert view.epsilon == pytest.approx(max(0.1, 0.995**500))


async def test_200_tasks_racing_on_one_recommendation(service: QTuneService) -> None:
    [mid] = await record_many(service, 1)
    results = await asyncio.gather(*(service.feedback(mid, USER, i % 2 == 0) for i in range(200)))
    assert sum(r.applied for r in results) == 1
    assert {r.reason for r in results if not r.applied} == {"already_rewarded"}
    view = await service.table(USER)
    assert view.rewards == 1
    assert np.count_nonzero(view.q) == 1


async def test_red_style_15_concurrent_updates_lose_nothing(service: QTuneService) -> None:
    """Fifteen tasks each read-modify-write the same user's counter at once."""
    storage = service.storage

    def bump(rec: UserRecord | None) -> tuple[UserRecord, int]:
        rec = rec or UserRecord.fresh(USER, service.genres, service.learner.initial_state(5))
        rec.rewards += 1
        return rec, rec.rewards

    async def task() -> int:
        await asyncio.sleep(0)
        return await storage.update_user(USER, bump)

    seen = await asyncio.gather(*(task() for _ in range(15)))
    assert sorted(seen) == list(range(1, 16))
    user = await storage.get_user(USER)
    assert user is not None
    assert user.rewards == 15


async def test_feedback_waits_for_a_pretraining_and_is_not_lost(service: QTuneService) -> None:
    ids = await record_many(service, 20)
    sim = asyncio.create_task(service.simulate(USER, "pop_lover", 20_000, seed=3))
    await asyncio.sleep(0)  # let the simulation take hold of the user
    results = await asyncio.gather(*(service.feedback(mid, USER, True) for mid in ids))
    report = await sim
    assert all(r.applied for r in results)
    user = await service.storage.get_user(USER)
    assert user is not None
    assert user.rewards == 20
    # 20,000 simulated steps plus the 20 real ones, all in the visit counts.
    assert int(user.learner.visits.sum()) == 20_020
    assert report.episodes == 20_000


async def test_a_failing_step_changes_nothing_and_others_still_commit(
    service: QTuneService,
) -> None:
    storage = service.storage
    await storage.add_recommendation(Recommendation(1, USER, 1, 2, "Pop", "Rock", 1.0, 0.0))

    def broken(rec, user):
        raise RuntimeError("engine bug")

    outcome, ok = await asyncio.gather(
        storage.apply_reward(1, USER, broken),
        service.set_meta("k", "v"),
        return_exceptions=True,
    )
    assert isinstance(outcome, RuntimeError)
    assert ok is None
    assert await service.get_meta("k") == "v"
    rec = await storage.get_recommendation(1)
    assert rec is not None
    assert not rec.rewarded
    assert (await service.feedback(1, USER, True)).applied


async def test_two_processes_worth_of_connections_lose_no_update(tmp_path: Path) -> None:
    """The bot and the console may share one file: each connection's cache must notice
    the other's commits (PRAGMA data_version), or a read-modify-write would lose one."""
    path = tmp_path / "shared.db"
    a = await SQLiteStorage.open(path)
    b = await SQLiteStorage.open(path)
    try:

        def bump(rec: UserRecord | None) -> tuple[UserRecord, None]:
            rec = rec or UserRecord.fresh(USER, a.genres, make_learner("seed").initial_state(5))
            rec.rewards += 1
            return rec, None

        for _ in range(10):
            await a.update_user(USER, bump)  # a caches the user...
            await b.update_user(USER, bump)  # ...b changes it behind a's back
        user = await a.get_user(USER)
        assert user is not None
        assert user.rewards == 20
    finally:
        await a.close()
        await b.close()


async def test_cached_user_is_not_shared_with_callers(tmp_path: Path) -> None:
    st = await SQLiteStorage.open(tmp_path / "cache.db")
    try:
        rec = UserRecord.fresh(USER, st.genres, make_learner("seed").initial_state(5))
        await st.update_user(USER, lambda _old: (rec, None))
        first = await st.get_user(USER)
        assert first is not None
        first.learner.q[:] = 99.0  # a caller scribbling on its copy
        second = await st.get_user(USER)
        assert second is not None
        assert np.all(second.learner.q == 0.0)
    finally:
        await st.close()


async def test_a_failing_write_is_rolled_back_alone(service: QTuneService) -> None:
    """An error after an operation's first write (the place is interned, then the missing
    action fails) undoes that operation only; the batch's other operations commit."""
    storage = service.storage
    await storage.add_recommendation(Recommendation(1, USER, 1, 2, "Pop", "Rock", 1.0, 0.0))

    bad = Recommendation(2, USER, 1, 2, "Pop", None, 1.0, 0.0)  # type: ignore[arg-type]
    results = await asyncio.gather(
        storage.add_recommendation(bad),
        service.feedback(1, USER, True),
        return_exceptions=True,
    )
    assert isinstance(results[0], Exception)
    assert results[1].applied
    assert await storage.get_recommendation(2) is None
    assert (await service.table(USER)).rewards == 1
