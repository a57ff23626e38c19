"""The one-line reason for a suggestion: what the learner's counts say, in words."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.engine.qlearning import DEFAULT_GENRES, LearnerState
from bot.explain import explain, liked_count
from bot.service import QTuneService
from storage.sqlite import SQLiteStorage

G = DEFAULT_GENRES  # Pop, Rock, Jazz, Classical, HipHop
POP, ROCK, JAZZ, CLASSICAL = 0, 1, 2, 3


def state_with(cells: dict[tuple[int, int], tuple[int, int]], q_best: tuple[int, int] | None):
    """A learner state with (likes, dislikes) per cell and an optional best cell in Q."""
    st = LearnerState.fresh(len(G), 0.5)
    for (s, a), (likes, dislikes) in cells.items():
        st.visits[s, a] = likes + dislikes
        st.reward_sum[s, a] = 10.0 * likes - 5.0 * dislikes
    if q_best is not None:
        st.q[q_best] = 50.0
    return st


def why(st: LearnerState, s: int, a: int):
    return explain(G, st, s, a, like=10.0, dislike=-5.0)


def test_known_pick_counts_the_likes_after_that_genre() -> None:
    st = state_with({(CLASSICAL, JAZZ): (4, 1)}, q_best=(CLASSICAL, JAZZ))
    out = why(st, CLASSICAL, JAZZ)
    assert out.text == "You liked Jazz 4 of 5 times after Classical."
    assert not out.explored


def test_known_pick_from_other_genres_says_so() -> None:
    st = state_with({(ROCK, POP): (2, 0), (JAZZ, POP): (1, 1)}, q_best=(CLASSICAL, POP))
    out = why(st, CLASSICAL, POP)
    assert out.text == "You liked Pop 3 of 4 times so far (not yet rated after Classical)."


def test_one_time_is_singular() -> None:
    st = state_with({(ROCK, POP): (1, 0)}, q_best=(ROCK, POP))
    assert why(st, ROCK, POP).text == "You liked Pop 1 of 1 time after Rock."


def test_a_pick_off_the_best_is_exploring_and_names_the_best() -> None:
    st = state_with({(ROCK, POP): (3, 0)}, q_best=(ROCK, POP))
    out = why(st, ROCK, JAZZ)
    assert out.explored
    assert out.text == "Something new to try: after Rock my best guess is still Pop."
    assert "ε" not in out.text


def test_a_fresh_listener_gets_a_first_guess() -> None:
    out = why(LearnerState.fresh(len(G), 1.0), ROCK, JAZZ)
    assert out.text == "A first guess: you haven't rated any suggestion yet."
    assert out.explored


@pytest.mark.parametrize(("n", "total", "likes"), [(5, 35.0, 4), (3, -15.0, 0), (2, 20.0, 2)])
def test_liked_count_inverts_the_reward_sum(n: int, total: float, likes: int) -> None:
    assert liked_count(n, total, 10.0, -5.0) == likes


@pytest.mark.parametrize("learner", ["seed", "dyna"])
async def test_service_explains_from_the_stored_reactions(tmp_path, learner: str) -> None:
    """After 4 likes of the same suggestion, a greedy pick of it quotes those counts."""
    storage = await SQLiteStorage.open(tmp_path / "why.db")
    service = QTuneService(storage, learner=make_learner(learner), rng=np.random.default_rng(3))
    try:
        liked: str | None = None
        for mid in range(1, 200):
            sug = await service.recommend(7, "Classical")
            await service.record(mid, sug, None, None)
            await service.feedback(mid, 7, liked=sug.action == (liked or sug.action))
            liked = liked or sug.action
            view = await service.table(7)
            if not sug.explored and sug.action == liked and "4 of 4" in sug.reason:
                break
        else:
            pytest.fail("never explained a greedy pick of the liked genre")
        assert sug.reason == f"You liked {liked} 4 of 4 times after Classical."
        assert view.policy["Classical"] == liked
    finally:
        await storage.close()
