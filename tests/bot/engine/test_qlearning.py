"""Q-learning basics: the TD rule (the deck's worked example), ε-greedy with random ties,
genre lists, the state and its re-indexing by genre name."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.qlearning import (
    DEFAULT_GENRES,
    LearnerState,
    epsilon_greedy,
    greedy,
    greedy_batch,
    remap_state,
    td_update,
    td_update_batch,
    validate_genres,
)

POP, ROCK = 0, 1


def worked_example_table() -> np.ndarray:
    """The deck: Q(Rock, Pop) = 1.0 and max Q(Pop, ·) = 0.2."""
    q = np.zeros((5, 5))
    q[ROCK, POP] = 1.0
    q[POP, POP] = 0.2
    return q


def test_worked_example_from_the_deck() -> None:
    q = worked_example_table()
    td = td_update(q, ROCK, POP, 10.0, POP, alpha=0.1, gamma=0.9)
    assert td == pytest.approx(9.18)
    assert q[ROCK, POP] == pytest.approx(1.918)
    changed = np.argwhere(q != worked_example_table())
    assert changed.tolist() == [[ROCK, POP]]


def test_worked_example_batched() -> None:
    q = np.stack([worked_example_table()] * 3)
    s, a = np.full(3, ROCK), np.full(3, POP)
    td = td_update_batch(q, s, a, np.full(3, 10.0), a, 0.1, 0.9)
    np.testing.assert_allclose(td, 9.18)
    np.testing.assert_allclose(q[:, ROCK, POP], 1.918)


def test_td_update_when_next_state_is_the_current_one() -> None:
    """s' = s = a: the target uses the row as it was before the update."""
    q = np.zeros((3, 3))
    q[2] = [1.0, 2.0, 4.0]
    td_update(q, 2, 2, 1.0, 2, alpha=0.5, gamma=0.5)
    assert q[2, 2] == pytest.approx(4.0 + 0.5 * (1.0 + 0.5 * 4.0 - 4.0))


def picks(fn, n_draws: int = 6000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.bincount([fn(rng) for _ in range(n_draws)], minlength=5)


def test_greedy_breaks_full_ties_uniformly() -> None:
    counts = picks(lambda rng: greedy(np.zeros(5), rng))
    assert counts.min() > 0.8 * 6000 / 5  # every genre, not always index 0
    assert counts.max() < 1.2 * 6000 / 5


def test_greedy_picks_only_among_the_tied_best() -> None:
    row = np.array([1.0, 3.0, 3.0, 0.0, 3.0])
    counts = picks(lambda rng: greedy(row, rng))
    assert counts[[0, 3]].sum() == 0
    assert counts[[1, 2, 4]].min() > 0.8 * 6000 / 3


def test_greedy_without_ties_is_the_argmax() -> None:
    counts = picks(lambda rng: greedy(np.array([0.0, 0.1, 5.0, 0.2, -1.0]), rng), 200)
    assert counts[2] == 200


def test_epsilon_greedy_exploits_at_zero_and_explores_at_one() -> None:
    row = np.array([0.0, 0.0, 9.0, 0.0, 0.0])
    assert picks(lambda rng: epsilon_greedy(row, 0.0, rng), 300)[2] == 300
    explore = picks(lambda rng: epsilon_greedy(row, 1.0, rng))
    assert explore.min() > 0.8 * 6000 / 5


def test_epsilon_greedy_explores_at_rate_epsilon() -> None:
    row = np.array([0.0, 0.0, 9.0, 0.0, 0.0])
    counts = picks(lambda rng: epsilon_greedy(row, 0.3, rng), 20000)
    # non-greedy share = ε · 4/5
    assert counts.sum() - counts[2] == pytest.approx(20000 * 0.3 * 0.8, rel=0.06)


def test_greedy_batch_breaks_ties_at_random() -> None:
    rng = np.random.default_rng(1)
    rows = np.zeros((5000, 5))
    rows[:, 3] = -1.0  # 4 tied best columns, never column 3
    counts = np.bincount(greedy_batch(rows, rng), minlength=5)
    assert counts[3] == 0
    assert counts[[0, 1, 2, 4]].min() > 0.8 * 5000 / 4


@pytest.mark.parametrize(
    ("genres", "match"),
    [
        (["Pop"], "at least 2"),
        ([], "at least 2"),
        (["Pop", "Rock", "Pop"], "duplicate genres: Pop"),
        (["Pop", "pop"], "duplicate"),
        (["Pop", "  "], "empty"),
    ],
)
def test_rejected_genre_lists(genres: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_genres(genres)


def test_genre_list_is_configurable() -> None:
    assert validate_genres(["Lo-fi", " Metal "]) == ("Lo-fi", "Metal")


def test_learner_state_must_be_square() -> None:
    with pytest.raises(ValueError, match="square"):
        LearnerState(np.zeros((2, 3)), epsilon=1.0)


# --- re-indexing a stored state by genre name ---------------------------------------
def named_state(genres: tuple[str, ...], seed: int = 0) -> LearnerState:
    rng = np.random.default_rng(seed)
    n = len(genres)
    visits = rng.integers(0, 5, size=(n, n))
    return LearnerState(rng.normal(size=(n, n)), 0.4, visits, visits * 2.5)


def by_name(state: LearnerState, genres: tuple[str, ...], field: str) -> dict:
    m = getattr(state, field)
    return {
        (s.casefold(), a.casefold()): m[i, j]
        for i, s in enumerate(genres)
        for j, a in enumerate(genres)
    }


@pytest.mark.parametrize(
    "new",
    [
        (*DEFAULT_GENRES, "Metal"),
        ("Pop", "Rock", "Classical", "HipHop"),
        ("HipHop", "jazz", "Metal", "POP", "Classical", "Rock"),
    ],
    ids=["added", "removed", "reordered-renamed-added"],
)
def test_remap_state_keeps_every_value_under_its_name(new: tuple[str, ...]) -> None:
    old = named_state(DEFAULT_GENRES)
    got = remap_state(old, DEFAULT_GENRES, new)
    assert got.q.shape == (len(new), len(new))
    assert got.epsilon == old.epsilon
    for field in ("q", "visits", "reward_sum"):
        was, now = by_name(old, DEFAULT_GENRES, field), by_name(got, new, field)
        for key, value in now.items():
            assert value == was.get(key, 0), (field, key)  # added genres start at zero
    assert got.visits.dtype == old.visits.dtype
