"""QTuneService rules, on a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.engine.learners import SeedLearner, make_learner
from bot.engine.qlearning import DEFAULT_GENRES
from bot.errors import Cancelled, InvalidRequest, UnknownGenre
from bot.service import SIMULATED_USERS, QTuneService
from bot.workers import CpuPool
from storage.sqlite import SQLiteStorage

ALICE, BOB = 1001, 1002


@pytest.fixture
async def storage(tmp_path: Path):
    st = await SQLiteStorage.open(tmp_path / "svc.db")
    yield st
    await st.close()


@pytest.fixture
def service(storage: SQLiteStorage) -> QTuneService:
    return QTuneService(
        storage, learner=make_learner("seed"), max_episodes=5000, rng=np.random.default_rng(7)
    )


async def suggest(service: QTuneService, user: int, genre: str, message_id: int):
    s = await service.recommend(user, genre)
    await service.record(message_id, s, 10, 20)
    return s


@pytest.mark.parametrize(
    ("text", "genre"),
    [
        ("hip hop", "HipHop"),
        ("hip-hop", "HipHop"),
        ("HIPHOP", "HipHop"),
        ("hip_hop", "HipHop"),
        ("  Hip  Hop ", "HipHop"),
        ("rock", "Rock"),
        ("CLASSICAL", "Classical"),
    ],
)
def test_parse_genre_aliases(service: QTuneService, text: str, genre: str) -> None:
    assert service.parse_genre(text) == genre


def test_unknown_genre_lists_the_genres(service: QTuneService) -> None:
    with pytest.raises(UnknownGenre) as err:
        service.parse_genre("polka")
    for g in DEFAULT_GENRES:
        assert g in str(err.value)
    assert "\n" not in str(err.value)


async def test_recommend_sets_the_current_genre(service: QTuneService) -> None:
    s = await service.recommend(ALICE, "jazz")
    assert (s.user_id, s.state, s.epsilon) == (ALICE, "Jazz", 1.0)
    assert s.action in DEFAULT_GENRES
    view = await service.table(ALICE)
    assert view.current_genre == "Jazz"
    assert view.rewards == 0


async def test_one_like_on_a_fresh_table_is_exactly_one(service: QTuneService) -> None:
    s = await suggest(service, ALICE, "Rock", 1)
    result = await service.feedback(1, ALICE, True)
    assert result.applied
    assert result.reason == "applied"
    assert (result.state, result.action, result.reward) == ("Rock", s.action, 10.0)
    assert result.td_error == 10.0
    assert result.epsilon == pytest.approx(0.995)
    view = await service.table(ALICE)
    expected = np.zeros((5, 5))
    expected[1, DEFAULT_GENRES.index(s.action)] = 1.0  # α 0.1 × r 10
    np.testing.assert_array_equal(view.q, expected)
    assert view.current_genre == s.action  # a like moves the listener on
    assert view.rewards == 1


async def test_dislike_keeps_the_current_genre(service: QTuneService) -> None:
    s = await suggest(service, ALICE, "Pop", 1)
    result = await service.feedback(1, ALICE, False)
    assert result.reward == -5.0
    view = await service.table(ALICE)
    assert view.q[0, DEFAULT_GENRES.index(s.action)] == pytest.approx(-0.5)
    assert view.current_genre == "Pop"


async def test_custom_rewards(storage: SQLiteStorage) -> None:
    svc = QTuneService(storage, learner=make_learner("seed"), like_reward=2.0, dislike_reward=-1)
    await suggest(svc, ALICE, "Pop", 1)
    assert (await svc.feedback(1, ALICE, True)).reward == 2.0


async def test_ignored_reactions_have_their_reason(service: QTuneService) -> None:
    await suggest(service, ALICE, "Rock", 1)
    other = await service.feedback(1, BOB, True)
    assert (other.applied, other.reason) == (False, "not_requester")
    assert (await service.feedback(999, ALICE, True)).reason == "not_a_recommendation"
    assert (await service.feedback(1, ALICE, True)).applied
    second = await service.feedback(1, ALICE, False)
    assert (second.applied, second.reason) == (False, "already_rewarded")
    assert (await service.table(ALICE)).rewards == 1
    assert (await service.table(BOB)).rewards == 0


async def test_reset_deletes_everything(service: QTuneService) -> None:
    await suggest(service, ALICE, "Rock", 1)
    await suggest(service, ALICE, "Rock", 2)
    await service.feedback(1, ALICE, True)
    assert await service.reset(ALICE) is True
    view = await service.table(ALICE)
    assert (view.rewards, view.current_genre, view.epsilon) == (0, None, 1.0)
    assert np.all(view.q == 0.0)
    assert await service.pending() == []
    assert (await service.feedback(2, ALICE, True)).reason == "not_a_recommendation"
    assert await service.reset(ALICE) is False


async def test_pending_lists_unrewarded(service: QTuneService) -> None:
    await suggest(service, ALICE, "Rock", 1)
    await suggest(service, BOB, "Jazz", 2)
    await service.feedback(1, ALICE, True)
    pending = await service.pending()
    assert [(p.message_id, p.user_id, p.channel_id) for p in pending] == [(2, BOB, 20)]


@pytest.mark.parametrize("episodes", [0, -1, 5001])
async def test_simulate_bounds(service: QTuneService, episodes: int) -> None:
    with pytest.raises(InvalidRequest, match="5,000"):
        await service.simulate(ALICE, "pop_lover", episodes)


async def test_simulate_unknown_user(service: QTuneService) -> None:
    with pytest.raises(InvalidRequest, match="Unknown simulated listener 'nobody_like_this'"):
        await service.simulate(ALICE, "nobody_like_this", 10)
    with pytest.raises(InvalidRequest, match="unknown user"):  # the operator's wording
        await service.simulate(ALICE, "nobody_like_this", 10, allow_files=True)


PROFILE = Path(__file__).resolve().parents[2] / "docs" / "profiles" / "night_owl.toml"


@pytest.mark.parametrize("spec", [str(PROFILE), "/etc/passwd", "../x.toml", "night_owl.toml"])
async def test_simulate_reads_no_file_unless_the_caller_allows_it(
    service: QTuneService, spec: str
) -> None:
    """Discord users name only built-in listeners; a path would read the server's files."""
    with pytest.raises(InvalidRequest, match="Choose one of: generic, pop_lover"):
        await service.simulate(ALICE, spec, 10)
    assert await service.storage.get_user(ALICE) is None  # nothing ran, nothing stored


async def test_the_operator_may_simulate_a_profile_file(service: QTuneService) -> None:
    report = await service.simulate(ALICE, str(PROFILE), 50, seed=1, allow_files=True)
    assert report.user == "night_owl"
    assert report.episodes == 50


def test_every_builtin_listener_is_allowed(service: QTuneService) -> None:
    assert set(SIMULATED_USERS) >= {"generic", "pop_lover", "rock_fan"}
    for name in SIMULATED_USERS:
        assert service.check_simulation(f" {name.upper()} ", 1) == name


async def test_simulate_pretrains_in_place_from_current_values(service: QTuneService) -> None:
    await suggest(service, ALICE, "Rock", 1)
    await service.feedback(1, ALICE, True)
    before = await service.storage.get_user(ALICE)
    report = await service.simulate(ALICE, "pop_lover", 3000, seed=5)
    after = await service.storage.get_user(ALICE)
    assert before is not None
    assert after is not None
    assert int(after.learner.visits.sum()) == 3001  # continued from the stored table
    assert after.learner.epsilon < before.learner.epsilon
    assert after.rewards == 1  # simulated steps are not reactions
    assert after.current_genre == before.current_genre
    assert report.rewards.shape == (3000,)
    assert report.policy == report.table.policy
    assert report.policy["Rock"] == "Pop"  # pop_lover: Pop is best from everywhere
    np.testing.assert_array_equal(report.table.q, after.learner.q)


async def test_simulate_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    tables = []
    for name in ("a.db", "b.db"):
        st = await SQLiteStorage.open(tmp_path / name)
        svc = QTuneService(st, learner=make_learner("seed"))
        tables.append((await svc.simulate(ALICE, "rock_fan", 500, seed=11)).table.q)
        await st.close()
    np.testing.assert_array_equal(tables[0], tables[1])


async def test_table_of_a_stranger_is_fresh_and_not_stored(service: QTuneService) -> None:
    view = await service.table(BOB)
    assert view.genres == DEFAULT_GENRES
    assert np.all(view.q == 0.0)
    assert set(view.policy) == set(DEFAULT_GENRES)
    assert await service.storage.get_user(BOB) is None


async def test_default_learner_is_used_when_none_given(storage: SQLiteStorage) -> None:
    svc = QTuneService(storage)
    assert svc.learner.name == make_learner().name


async def test_meta_passthrough(service: QTuneService) -> None:
    await service.set_meta("commands", "hash1")
    assert await service.get_meta("commands") == "hash1"


async def test_simulate_refuses_to_start_once_shutdown_began(service: QTuneService) -> None:
    await suggest(service, ALICE, "Rock", 1)
    await service.feedback(1, ALICE, liked=True)
    before = (await service.table(ALICE)).q.copy()
    service.cancel_simulations()
    with pytest.raises(Cancelled):
        await service.simulate(ALICE, "pop_lover", 1000)
    np.testing.assert_array_equal((await service.table(ALICE)).q, before)


class _PausingLearner(SeedLearner):
    """A seed learner (generic path) that pauses at step 10 until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        self.paused = threading.Event()
        self.release = threading.Event()

    def update(self, state, s, a, r, s_next):  # type: ignore[override]
        self.steps += 1
        if self.steps == 10:
            self.paused.set()
            self.release.wait(10)
        return super().update(state, s, a, r, s_next)


async def test_shutdown_cancels_a_running_simulation_and_keeps_the_table(
    storage: SQLiteStorage,
) -> None:
    learner = _PausingLearner()
    svc = QTuneService(storage, learner=learner, max_episodes=100_000)
    task = asyncio.create_task(svc.simulate(ALICE, "pop_lover", 100_000))
    assert await asyncio.to_thread(learner.paused.wait, 10)
    svc.cancel_simulations()
    learner.release.set()
    with pytest.raises(Cancelled):
        await task
    assert learner.steps < 100_000
    view = await svc.table(ALICE)
    assert not view.q.any()


async def test_simulate_in_the_worker_process_matches_the_thread(tmp_path: Path) -> None:
    tables = []
    for cpu in (None, CpuPool()):
        st = await SQLiteStorage.open(tmp_path / f"w{cpu is None}.db")
        svc = QTuneService(st, learner=make_learner("dyna"), cpu=cpu)
        try:
            tables.append((await svc.simulate(ALICE, "jazz_enthusiast", 300, seed=4)).table.q)
        finally:
            svc.cancel_simulations()
            await st.close()
    np.testing.assert_array_equal(tables[0], tables[1])


async def test_shutdown_kills_a_simulation_in_the_worker_and_keeps_the_table(
    storage: SQLiteStorage,
) -> None:
    svc = QTuneService(storage, learner=make_learner("dyna"), cpu=CpuPool())
    await svc.run_cpu(sum, [1, 2])  # the worker is up
    task = asyncio.create_task(svc.simulate(ALICE, "pop_lover", 100_000))
    await asyncio.sleep(0.3)  # 100,000 dyna steps take seconds; this one is still running
    svc.cancel_simulations()
    with pytest.raises(Cancelled):
        await asyncio.wait_for(task, 20)
    fresh = svc.learner.initial_state(len(svc.genres)).q
    np.testing.assert_array_equal((await svc.table(ALICE)).q, fresh)


# ------------------------------------------------------------- changed genres
SIX = (*DEFAULT_GENRES, "Metal")


async def reopened_with(path: Path, genres: tuple[str, ...]) -> tuple[QTuneService, SQLiteStorage]:
    st = await SQLiteStorage.open(path, genres=genres)
    svc = QTuneService(
        st, genres=genres, learner=make_learner("dyna"), rng=np.random.default_rng(3)
    )
    return svc, st


async def test_added_genre_is_offered_to_an_existing_user(tmp_path: Path) -> None:
    """A user stored before Metal was added is offered it as a fresh six-genre user is.

    (Storage used to zero-fill the new row and column: against the planned ≈ +70 of the
    other genres, dyna then offered Metal 0 times in 2,000 until the next reaction.)
    """
    path = tmp_path / "genres.db"
    svc, st = await reopened_with(path, DEFAULT_GENRES)
    await svc.recommend(ALICE, "Rock")  # stored, no reaction yet
    await st.close()
    svc, st = await reopened_with(path, SIX)
    try:
        view = await svc.table(ALICE)
        fresh = svc.learner.initial_state(6)
        np.testing.assert_allclose(view.q, fresh.q, rtol=0, atol=1e-9)
        picks = [(await svc.recommend(ALICE, "Pop")).action for _ in range(300)]
        assert picks.count("Metal") / 300 == pytest.approx(1 / 6, abs=0.07)
        assert view.current_genre == "Rock"
    finally:
        await st.close()


async def test_a_reaction_after_a_genre_change_is_stored_under_the_new_genres(
    tmp_path: Path,
) -> None:
    path = tmp_path / "genres.db"
    svc, st = await reopened_with(path, DEFAULT_GENRES)
    await suggest(svc, ALICE, "Jazz", 1)
    assert (await svc.feedback(1, ALICE, liked=True)).applied
    before = await st.get_user(ALICE)
    await st.close()
    svc, st = await reopened_with(path, SIX)
    try:
        stored = await st.get_user(ALICE)
        assert stored is not None
        assert stored.genres == DEFAULT_GENRES  # storage keeps what it was given
        sg = await suggest(svc, ALICE, "Metal", 2)
        assert (await svc.feedback(2, ALICE, liked=False)).applied
        after = await st.get_user(ALICE)
        assert after is not None
        assert after.genres == SIX
        assert after.learner.visits.sum() == 2
        assert before is not None
        jazz = DEFAULT_GENRES.index("Jazz")
        np.testing.assert_array_equal(after.learner.visits[:5, :5], before.learner.visits)
        assert after.learner.visits[SIX.index("Metal"), SIX.index(sg.action)] == 1
        assert after.learner.reward_sum[:5, jazz].sum() == before.learner.reward_sum[:, jazz].sum()
    finally:
        await st.close()
