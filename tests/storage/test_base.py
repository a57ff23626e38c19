"""The storage contract (storage/base.py), run against every backend in backends.py.

What the service relies on: records round-trip and are copies; a recommendation is
rewarded at most once, atomically with its user's table, even with hundreds of racing
tasks; a /simulate hold makes rewards wait and loses none; a table comes back under
the genre names it was saved with (adapting it is the learner's rule); reset deletes
a user's data; the data survives closing and reopening.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.engine.qlearning import LearnerState
from bot.service import QTuneService, Suggestion
from storage.base import (
    Recommendation,
    RewardOutcome,
    SkipReward,
    Storage,
    StorageError,
    UserRecord,
)
from tests.storage.backends import Backend

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
USER = 4242
_ids = itertools.count(10**15)


def learner(n: int = 5, seed: int = 0) -> LearnerState:
    rng = np.random.default_rng(seed)
    return LearnerState(
        rng.normal(size=(n, n)), 0.42, rng.integers(0, 50, size=(n, n)), rng.normal(size=(n, n))
    )


def rec(
    mid: int, user: int = USER, state: str = "Pop", action: str = "Rock", **kw
) -> Recommendation:
    """A recommendation ``mid`` of ``user``; keywords override guild, channel, times..."""
    fields = {"guild_id": 1, "channel_id": 2, "epsilon": 1.0, "created_at": time.time(), **kw}
    return Recommendation(mid, user, state=state, action=action, **fields)


async def put(storage: Storage, record: UserRecord) -> None:
    """Store ``record`` as is, through the contract: a reward step that returns it."""
    mid = next(_ids)
    await storage.add_recommendation(rec(mid, record.user_id))
    outcome = await storage.apply_reward(mid, record.user_id, lambda _r, _u: (0.0, record, None))
    assert outcome.status == "applied"


def assert_same_table(got: LearnerState, want: LearnerState) -> None:
    np.testing.assert_array_equal(got.q, want.q)
    np.testing.assert_array_equal(got.visits, want.visits)
    np.testing.assert_array_equal(got.reward_sum, want.reward_sum)
    assert got.epsilon == want.epsilon


def service_on(storage: Storage, genres: tuple[str, ...] = GENRES) -> QTuneService:
    return QTuneService(
        storage, genres=genres, learner=make_learner("seed"), rng=np.random.default_rng(0)
    )


async def record_many(service: QTuneService, n: int) -> list[int]:
    genres = service.genres
    ids = list(range(1, n + 1))
    await asyncio.gather(
        *(
            service.record(mid, Suggestion(USER, genres[i % 5], genres[(i * 3) % 5], 1.0), 1, 2)
            for i, mid in enumerate(ids)
        )
    )
    return ids


async def pending_ids(storage: Storage) -> list[int]:
    return [r.message_id for r in await storage.pending(10**10)]


# ------------------------------------------------------------------ round trips
async def test_unknown_user_and_recommendation(storage: Storage) -> None:
    assert await storage.get_user(123) is None
    assert await storage.delete_user(123) is False
    outcome = await storage.apply_reward(99, 123, lambda _r, _u: pytest.fail("no step"))
    assert outcome == RewardOutcome("not_a_recommendation", None)


async def test_user_survives_close_and_reopen(backend: Backend) -> None:
    storage = await backend.open(GENRES)
    record = UserRecord(7, GENRES, learner(), "Jazz", 12, 1000.5, 2000.25)
    before = time.time()
    await put(storage, record)
    await storage.close()
    got = await (await backend.open(GENRES)).get_user(7)
    assert got is not None
    assert_same_table(got.learner, record.learner)
    assert (got.genres, got.current_genre, got.rewards) == (GENRES, "Jazz", 12)
    assert got.created_at == pytest.approx(1000.5, abs=0.001)
    assert got.updated_at >= before - 0.001  # every write stamps the update time


async def test_returned_records_are_copies(storage: Storage) -> None:
    await put(storage, UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0)))
    first = await storage.get_user(USER)
    assert first is not None
    first.learner.q[:] = 99.0  # a caller scribbling on its copy
    first.rewards = 1000
    second = await storage.get_user(USER)
    assert second is not None
    assert np.all(second.learner.q == 0.0)
    assert second.rewards == 0


async def test_pending_lists_unrewarded_recent_recommendations_oldest_first(
    storage: Storage,
) -> None:
    now = time.time()
    await storage.add_recommendation(rec(11, created_at=now - 5))
    await storage.add_recommendation(
        rec(12, guild_id=None, channel_id=None, created_at=now - 10_000)
    )
    await storage.add_recommendation(rec(13, created_at=now - 20, reward=10.0, rewarded_at=now))
    await storage.add_recommendation(rec(14, user=8, state="Jazz", action="HipHop", created_at=now))
    assert [r.message_id for r in await storage.pending(3600)] == [11, 14]
    assert [r.message_id for r in await storage.pending(86400)] == [12, 11, 14]
    assert [r.message_id for r in await storage.pending(86400, limit=2)] == [12, 11]
    got = {r.message_id: r for r in await storage.pending(86400)}
    assert (got[14].user_id, got[14].state, got[14].action, got[14].epsilon) == (
        8,
        "Jazz",
        "HipHop",
        1.0,
    )
    assert (got[11].guild_id, got[11].channel_id) == (1, 2)
    assert (got[12].guild_id, got[12].channel_id) == (None, None)
    assert got[14].created_at == pytest.approx(now, abs=1)  # whole seconds are enough


async def test_adding_a_recommendation_again_replaces_it(storage: Storage) -> None:
    await storage.add_recommendation(rec(1, action="Rock"))
    await storage.add_recommendation(rec(1, action="Jazz"))
    [only] = await storage.pending()
    assert (only.message_id, only.action) == (1, "Jazz")


async def test_meta_is_replaced_and_survives_reopening(backend: Backend) -> None:
    storage = await backend.open()
    assert await storage.get_meta("sync") is None
    await storage.set_meta("sync", "abc")
    await storage.set_meta("sync", "def")
    await storage.close()
    assert await (await backend.open()).get_meta("sync") == "def"


async def test_a_closed_storage_refuses_work(storage: Storage) -> None:
    await storage.close()
    with pytest.raises(StorageError, match="closed"):
        await storage.get_meta("k")
    await storage.close()  # closing twice is harmless


# ------------------------------------------------------------------ rewards
async def test_reward_statuses(storage: Storage) -> None:
    await storage.add_recommendation(rec(1))
    other = await storage.apply_reward(1, USER + 1, lambda _r, _u: pytest.fail("no step"))
    assert other.status == "not_requester"

    def step(r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, str]:
        assert user is None  # a new user: the step builds the record
        made = UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0))
        made.rewards = 1
        return 10.0, made, f"{r.state}->{r.action}"

    applied = await storage.apply_reward(1, USER, step)
    assert (applied.status, applied.value) == ("applied", "Pop->Rock")
    assert applied.recommendation is not None
    assert applied.recommendation.reward == 10.0
    assert applied.recommendation.rewarded
    again = await storage.apply_reward(1, USER, lambda _r, _u: pytest.fail("twice"))
    assert again.status == "already_rewarded"
    assert again.recommendation is not None
    assert again.recommendation.reward == 10.0
    user = await storage.get_user(USER)
    assert user is not None
    assert user.rewards == 1
    assert await pending_ids(storage) == []


async def test_a_skipped_or_failing_step_changes_nothing(storage: Storage) -> None:
    await put(storage, UserRecord.fresh(USER, GENRES, learner()))
    await storage.add_recommendation(rec(1))

    def skip(_r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, None]:
        assert user is not None
        user.learner.q[:] = 0.0  # changes to its copy must not be kept
        raise SkipReward("genre_removed")

    def broken(_r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, None]:
        assert user is not None
        user.rewards = 77
        raise RuntimeError("engine bug")

    assert (await storage.apply_reward(1, USER, skip)).status == "genre_removed"
    outcome, meta = await asyncio.gather(
        storage.apply_reward(1, USER, broken), storage.set_meta("k", "v"), return_exceptions=True
    )
    assert isinstance(outcome, RuntimeError)
    assert meta is None
    assert await storage.get_meta("k") == "v"  # the others still commit
    assert await pending_ids(storage) == [1]
    user = await storage.get_user(USER)
    assert user is not None
    assert_same_table(user.learner, learner())
    assert user.rewards == 0


async def test_500_concurrent_feedbacks_for_one_user(storage: Storage) -> None:
    service = service_on(storage)
    ids = await record_many(service, 500)
    results = await asyncio.gather(*(service.feedback(mid, USER, True) for mid in ids))
    assert all(r.applied for r in results)
    view = await service.table(USER)
    assert view.rewards == 500
    assert await pending_ids(storage) == []
    user = await storage.get_user(USER)
    assert user is not None
    assert int(user.learner.visits.sum()) == 500  # every update landed, none overwritten
    assert float(user.learner.reward_sum.sum()) == 5000.0
    assert view.epsilon == pytest.approx(max(0.1, 0.995**500))
    again = await asyncio.gather(*(service.feedback(mid, USER, False) for mid in ids))
    assert {r.reason for r in again} == {"already_rewarded"}


async def test_200_tasks_racing_on_one_recommendation(storage: Storage) -> None:
    service = service_on(storage)
    [mid] = await record_many(service, 1)
    results = await asyncio.gather(*(service.feedback(mid, USER, i % 2 == 0) for i in range(200)))
    assert sum(r.applied for r in results) == 1
    assert {r.reason for r in results if not r.applied} == {"already_rewarded"}
    [winner] = [r for r in results if r.applied]
    user = await storage.get_user(USER)
    assert user is not None
    assert user.rewards == 1
    assert int(user.learner.visits.sum()) == 1
    assert float(user.learner.reward_sum.sum()) == winner.reward


async def test_15_concurrent_read_modify_writes_lose_nothing(storage: Storage) -> None:
    """Red's check: fifteen tasks each bump the same user's counter at once."""
    for mid in range(1, 16):
        await storage.add_recommendation(rec(mid))

    def bump(_r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, int]:
        user = user or UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0))
        user.rewards += 1
        return 1.0, user, user.rewards

    async def task(mid: int) -> int:
        await asyncio.sleep(0)
        outcome = await storage.apply_reward(mid, USER, bump)
        assert outcome.value is not None
        return outcome.value

    seen = await asyncio.gather(*(task(mid) for mid in range(1, 16)))
    assert sorted(seen) == list(range(1, 16))
    user = await storage.get_user(USER)
    assert user is not None
    assert user.rewards == 15


async def test_two_storages_on_one_database_lose_no_update(backend: Backend) -> None:
    """The bot and the console (or two processes) may share a database: neither may
    serve a stale cached user to a read-modify-write."""
    a, b = await backend.open(), await backend.open()

    def bump(_r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, None]:
        user = user or UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0))
        user.rewards += 1
        return 1.0, user, None

    for mid in range(1, 21):
        await a.add_recommendation(rec(mid))
    for mid in range(1, 21, 2):
        await a.apply_reward(mid, USER, bump)  # a caches the user...
        await b.apply_reward(mid + 1, USER, bump)  # ...b changes it behind a's back
    user = await a.get_user(USER)
    assert user is not None
    assert user.rewards == 20
    assert await pending_ids(b) == []


# ------------------------------------------------------------------ the hold
async def test_a_hold_makes_rewards_wait_and_keeps_them(storage: Storage) -> None:
    await put(storage, UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0)))
    for mid in (1, 2):
        await storage.add_recommendation(rec(mid))
    await storage.add_recommendation(rec(3, user=USER + 1))
    started, release = asyncio.Event(), asyncio.Event()

    async def work(user: UserRecord | None) -> tuple[LearnerState, str]:
        assert user is not None
        started.set()
        await release.wait()
        held = user.learner.copy()
        held.visits[0, 0] += 1000  # what a long pretraining would add
        return held, "trained"

    def step(_r: Recommendation, user: UserRecord | None) -> tuple[float, UserRecord, None]:
        user = user or UserRecord.fresh(USER + 1, GENRES, LearnerState.fresh(5, 1.0))
        user.learner.visits[1, 1] += 1
        user.rewards += 1
        return 10.0, user, None

    hold = asyncio.create_task(storage.hold_and_update(USER, work))
    await started.wait()
    rewards = [asyncio.create_task(storage.apply_reward(m, USER, step)) for m in (1, 2)]
    other = await storage.apply_reward(3, USER + 1, step)  # another user is not held
    genre = await storage.set_current_genre(USER, "Jazz", pytest.fail)  # nor is the genre
    assert other.status == "applied"
    assert genre.current_genre == "Jazz"
    for _ in range(20):
        await asyncio.sleep(0)
    assert not any(t.done() for t in rewards)  # they wait for the hold...
    release.set()
    assert await hold == "trained"
    assert [(await t).status for t in rewards] == ["applied", "applied"]  # ...then apply
    user = await storage.get_user(USER)
    assert user is not None
    assert user.learner.visits[0, 0] == 1000  # the pretraining was kept
    assert user.learner.visits[1, 1] == 2  # and both rewards landed on top of it
    assert (user.rewards, user.current_genre) == (2, "Jazz")


async def test_feedback_waits_for_a_pretraining_and_is_not_lost(storage: Storage) -> None:
    service = service_on(storage)
    ids = await record_many(service, 20)
    sim = asyncio.create_task(service.simulate(USER, "pop_lover", 2_000, seed=3))
    await asyncio.sleep(0)  # let the simulation take hold of the user
    results = await asyncio.gather(*(service.feedback(mid, USER, True) for mid in ids))
    report = await sim
    assert all(r.applied for r in results)
    user = await storage.get_user(USER)
    assert user is not None
    assert user.rewards == 20
    # 2,000 simulated steps plus the 20 real ones, all in the visit counts.
    assert int(user.learner.visits.sum()) == 2_020
    assert report.episodes == 2_000


async def test_a_hold_on_a_new_user_creates_it(storage: Storage) -> None:
    async def work(user: UserRecord | None) -> tuple[LearnerState, None]:
        assert user is None
        return learner(), None

    await storage.hold_and_update(USER, work)
    user = await storage.get_user(USER)
    assert user is not None
    assert_same_table(user.learner, learner())
    assert (user.genres, user.rewards, user.current_genre) == (GENRES, 0, None)


# ------------------------------------------------------------------ genres
async def test_set_current_genre_creates_then_updates(storage: Storage) -> None:
    made = await storage.set_current_genre(
        USER, "Rock", lambda: UserRecord.fresh(USER, GENRES, learner())
    )
    assert made.current_genre == "Rock"
    again = await storage.set_current_genre(USER, "Pop", pytest.fail)  # exists: no fresh()
    assert again.current_genre == "Pop"
    assert_same_table(again.learner, learner())
    stored = await storage.get_user(USER)
    assert stored is not None
    assert (stored.current_genre, stored.rewards) == ("Pop", 0)


async def test_a_recommendation_makes_its_genre_current_and_keeps_the_table(
    storage: Storage,
) -> None:
    await storage.add_recommendation(rec(1, state="Jazz"))  # no table yet: none is made
    assert await storage.get_user(USER) is None
    await storage.set_current_genre(USER, "Rock", lambda: UserRecord.fresh(USER, GENRES, learner()))
    await storage.add_recommendation(rec(2, state="Classical"))
    await storage.add_recommendation(rec(3, USER + 1, state="Pop"))  # another user's
    stored = await storage.get_user(USER)
    assert stored is not None
    assert (stored.current_genre, stored.rewards) == ("Classical", 0)
    assert_same_table(stored.learner, learner())
    assert await storage.get_user(USER + 1) is None
    assert {r.message_id for r in await storage.pending()} == {1, 2, 3}


async def test_the_latest_of_concurrent_recommendations_sets_the_genre(storage: Storage) -> None:
    """Recommendations that land in one batch (group commit): the newest one's genre."""
    await storage.set_current_genre(USER, "Rock", lambda: UserRecord.fresh(USER, GENRES, learner()))
    now = time.time()
    genres = ["Pop", "Jazz", "HipHop", "Classical"]
    await asyncio.gather(
        *(
            storage.add_recommendation(rec(10 + i, state=g, created_at=now + i))
            for i, g in enumerate(genres)
        )
    )
    stored = await storage.get_user(USER)
    assert stored is not None
    assert stored.current_genre == "Classical"


async def stored_named_table(backend: Backend) -> dict[tuple[str, str], float]:
    storage = await backend.open(GENRES)
    record = UserRecord.fresh(7, GENRES, learner())
    record.current_genre = "Jazz"
    await put(storage, record)
    await storage.close()
    q = record.learner.q
    return {(s, a): q[i, j] for i, s in enumerate(GENRES) for j, a in enumerate(GENRES)}


async def reopened_user(backend: Backend, genres: tuple[str, ...]) -> UserRecord:
    got = await (await backend.open(genres)).get_user(7)
    assert got is not None
    return got


def named(record: UserRecord) -> dict[tuple[str, str], float]:
    g, q = record.genres, record.learner.q
    return {(s, a): q[i, j] for i, s in enumerate(g) for j, a in enumerate(g)}


@pytest.mark.parametrize(
    "genres",
    [
        (*GENRES, "Metal"),
        ("Pop", "Rock", "Classical", "HipHop"),
        ("HIPHOP", "Jazz", "pop", "Classical", "Rock"),
    ],
    ids=["added", "removed", "reordered-recased"],
)
async def test_a_table_comes_back_under_the_genres_it_was_saved_with(
    backend: Backend, genres: tuple[str, ...]
) -> None:
    """Storage maps a table only by its genre names; adapting it to the configured
    genres is the learner's rule, which the service applies (``Learner.adapt``)."""
    before = await stored_named_table(backend)
    got = await reopened_user(backend, genres)
    assert got.genres == GENRES
    assert named(got) == before
    assert got.current_genre == "Jazz"


async def test_a_table_written_under_new_genres_keeps_them(backend: Backend) -> None:
    await stored_named_table(backend)
    genres = ("HIPHOP", "Jazz", "pop", "Classical", "Rock", "Metal")
    storage = await backend.open(genres)
    service = service_on(storage, genres)
    adapted = service.learner.adapt((await storage.get_user(7)).learner, GENRES, genres)
    await put(storage, UserRecord(7, genres, adapted, "Jazz", 0, 0.0, 0.0))
    await storage.close()
    back = await reopened_user(backend, GENRES)
    assert back.genres == genres
    np.testing.assert_array_equal(back.learner.q, adapted.q)


@pytest.mark.parametrize(
    ("genres", "current"),
    [((*GENRES, "Metal"), "Jazz"), (("Pop", "Rock", "Classical", "HipHop"), None)],
    ids=["added", "removed"],
)
async def test_a_hold_stores_its_state_under_the_configured_genres(
    backend: Backend, genres: tuple[str, ...], current: str | None
) -> None:
    """/simulate hands back a state the service built for the configured genres."""
    await stored_named_table(backend)
    storage = await backend.open(genres)
    state = LearnerState.fresh(len(genres), 0.3)

    async def work(rec: UserRecord | None) -> tuple[LearnerState, None]:
        assert rec is not None
        assert rec.genres == GENRES  # as stored
        return state, None

    await storage.hold_and_update(7, work)
    got = await storage.get_user(7)
    assert got is not None
    assert got.genres == genres
    assert got.learner.q.shape == (len(genres), len(genres))
    assert got.current_genre == current  # kept by name, cleared once its genre is gone


async def test_feedback_for_a_removed_genre_is_skipped(backend: Backend) -> None:
    service = service_on(await backend.open(GENRES))
    await service.record(1, Suggestion(USER, "Pop", "Jazz", 1.0), 1, 2)
    fewer = ("Pop", "Rock", "Classical", "HipHop")
    service = service_on(await backend.open(fewer), fewer)
    result = await service.feedback(1, USER, True)
    assert (result.applied, result.reason) == (False, "genre_removed")
    assert await pending_ids(service.storage) == [1]  # kept: the genre may come back


# ------------------------------------------------------------------ reset
async def test_reset_deletes_the_table_and_recommendations_of_one_user(storage: Storage) -> None:
    service = service_on(storage)
    for mid, uid in ((1, 7), (2, 7), (3, 8)):
        await service.record(mid, Suggestion(uid, "Pop", "Rock", 1.0), 1, 2)
    assert (await service.feedback(1, 7, True)).applied
    assert (await service.feedback(3, 8, True)).applied
    assert await service.reset(7) is True
    assert await storage.get_user(7) is None
    assert await pending_ids(storage) == []  # 2 is gone with its user
    assert (await service.feedback(1, 7, True)).reason == "not_a_recommendation"
    assert (await service.feedback(2, 7, True)).reason == "not_a_recommendation"
    assert (await storage.get_user(8)) is not None
    assert await service.reset(7) is False


async def test_reset_waits_for_a_hold_then_deletes(storage: Storage) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def work(_user: UserRecord | None) -> tuple[LearnerState, None]:
        started.set()
        await release.wait()
        return learner(), None

    hold = asyncio.create_task(storage.hold_and_update(USER, work))
    await started.wait()
    reset = asyncio.create_task(storage.delete_user(USER))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reset.done()
    release.set()
    await hold
    assert await reset is True  # it deleted what the hold wrote: no table comes back
    assert await storage.get_user(USER) is None


async def test_the_learners_memory_survives_reopening_and_a_genre_change(
    backend: Backend,
) -> None:
    st = learner()
    st.memory = np.arange(75, dtype=float).reshape(3, 5, 5) / 3.0
    storage = await backend.open(GENRES)
    await put(storage, UserRecord(7, GENRES, st, "Jazz", 3, 1000.0, 1000.0))
    await storage.close()
    got = await (await backend.open(GENRES)).get_user(7)
    assert got is not None
    assert got.learner.memory is not None
    np.testing.assert_array_equal(got.learner.memory, st.memory)
    await (await backend.open(GENRES)).close()
    genres = ("Jazz", "Pop", "Rock", "Classical", "HipHop", "Metal")
    stored = await (await backend.open(genres)).get_user(7)
    assert stored is not None
    assert stored.genres == GENRES  # as saved: adapting it is the learner's rule
    assert stored.learner.memory is not None
    np.testing.assert_array_equal(stored.learner.memory, st.memory)
    moved = make_learner("dyna").adapt(stored.learner, stored.genres, genres)
    assert moved.memory is not None
    assert moved.memory.shape == (3, 6, 6)
    old = list(GENRES)
    for i, s in enumerate(genres[:5]):
        for j, a in enumerate(genres[:5]):
            want = st.memory[:, old.index(s), old.index(a)]
            np.testing.assert_array_equal(moved.memory[:, i, j], want)
    np.testing.assert_array_equal(moved.memory[:, 5], 0.0)


async def test_propensities_are_stored_and_logged_rewards_list_them(storage: Storage) -> None:
    await storage.add_recommendation(rec(501, propensity=0.25))
    await storage.add_recommendation(rec(502))  # written without one (older rows too)
    await storage.add_recommendation(rec(503, propensity=0.5))
    mine = {r.message_id: r.propensity for r in await storage.recommendations_of(USER)}
    assert mine == {501: 0.25, 502: None, 503: 0.5}
    assert await storage.logged_rewards() == []  # nothing rewarded yet
    made = UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0))
    for mid in (501, 502):
        out = await storage.apply_reward(mid, USER, lambda _r, u: (10.0, u or made, None))
        assert out.status == "applied"
    logged = await storage.logged_rewards()
    assert [(r.message_id, r.propensity, r.reward) for r in logged] == [(501, 0.25, 10.0)]
