"""The engine: the TD rule (the deck's worked example), ε-greedy with random ties,
the ε schedule, and every rejected parameter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bot.engine.learners import LEARNERS, SeedLearner, make_learner
from bot.engine.qlearning import (
    DEFAULT_GENRES,
    AgentParams,
    BatchState,
    LearnerState,
    decay_epsilon,
    epsilon_greedy,
    greedy,
    greedy_batch,
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


def test_worked_example_through_the_seed_learner() -> None:
    learner = SeedLearner(AgentParams(alpha=0.1, gamma=0.9))
    state = LearnerState(worked_example_table(), epsilon=1.0)
    learner.update(state, ROCK, POP, 10.0, POP)
    assert state.q[ROCK, POP] == pytest.approx(1.918)
    assert state.visits[ROCK, POP] == 1
    assert state.reward_sum[ROCK, POP] == 10.0
    assert state.epsilon == pytest.approx(0.995)


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


def test_epsilon_schedule_and_floor() -> None:
    params = AgentParams(epsilon=1.0, epsilon_decay=0.9, epsilon_min=0.5)
    eps, seen = 1.0, []
    for _ in range(20):
        eps = decay_epsilon(eps, params)
        seen.append(eps)
    assert seen[:3] == pytest.approx([0.9, 0.81, 0.729])
    assert min(seen) == 0.5
    assert seen[-1] == 0.5
    assert all(b <= a for a, b in itertools.pairwise(seen))


def test_epsilon_below_the_floor_is_raised_to_it() -> None:
    params = AgentParams(epsilon=0.05, epsilon_min=0.1)
    assert decay_epsilon(0.05, params) == 0.1


def test_defaults_are_the_seeds() -> None:
    assert AgentParams().as_dict() == {
        "alpha": 0.1,
        "gamma": 0.9,
        "epsilon": 1.0,
        "epsilon_decay": 0.995,
        "epsilon_min": 0.1,
    }
    assert DEFAULT_GENRES == ("Pop", "Rock", "Jazz", "Classical", "HipHop")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 0.0),
        ("alpha", -0.1),
        ("alpha", 1.01),
        ("alpha", float("nan")),
        ("gamma", 1.0),
        ("gamma", -0.01),
        ("gamma", float("inf")),
        ("epsilon", -0.1),
        ("epsilon", 1.1),
        ("epsilon_min", -0.5),
        ("epsilon_min", 2.0),
        ("epsilon_decay", 0.0),
        ("epsilon_decay", 1.5),
        ("alpha", True),
        ("alpha", "0.1"),
    ],
)
def test_rejected_parameters_name_the_value(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as err:
        AgentParams(**{field: value})
    assert repr(value) in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 1.0},
        {"gamma": 0.0},
        {"epsilon": 0.0},
        {"epsilon": 1.0},
        {"epsilon_min": 0.0},
        {"epsilon_min": 1.0},
        {"epsilon_decay": 1.0},
    ],
)
def test_boundary_parameters_are_accepted(kwargs: dict[str, float]) -> None:
    AgentParams(**kwargs)


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


def test_fresh_states_start_at_zero() -> None:
    st = SeedLearner().initial_state(5)
    assert st.q.shape == (5, 5)
    assert not st.q.any()
    assert st.epsilon == 1.0
    bs = BatchState.fresh(7, 5, 0.5)
    assert bs.q.shape == (7, 5, 5)
    assert not bs.q.any()
    np.testing.assert_array_equal(bs.epsilon, 0.5)


def test_unknown_learner_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown learner") as err:
        make_learner("nope")
    for name in LEARNERS:
        assert name in str(err.value)
    assert make_learner("SEED").name == "seed"
