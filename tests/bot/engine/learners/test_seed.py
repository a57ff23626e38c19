"""The seed learner: the deck's worked example, its ε schedule, its parameters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bot.engine.learners import SeedLearner, SeedParams
from bot.engine.qlearning import DEFAULT_GENRES, BatchState, LearnerState

POP, ROCK = 0, 1


def worked_example_table() -> np.ndarray:
    """The deck: Q(Rock, Pop) = 1.0 and max Q(Pop, ·) = 0.2."""
    q = np.zeros((5, 5))
    q[ROCK, POP] = 1.0
    q[POP, POP] = 0.2
    return q


def test_worked_example_through_the_seed_learner() -> None:
    learner = SeedLearner(SeedParams(alpha=0.1, gamma=0.9))
    state = LearnerState(worked_example_table(), epsilon=1.0)
    learner.update(state, ROCK, POP, 10.0, POP)
    assert state.q[ROCK, POP] == pytest.approx(1.918)
    assert state.visits[ROCK, POP] == 1
    assert state.reward_sum[ROCK, POP] == 10.0
    assert state.epsilon == pytest.approx(0.995)


def test_epsilon_schedule_and_floor() -> None:
    learner = SeedLearner(SeedParams(epsilon=1.0, epsilon_decay=0.9, epsilon_min=0.5))
    state, seen = learner.initial_state(5), []
    for _ in range(20):
        learner.update(state, ROCK, POP, 1.0, POP)
        seen.append(state.epsilon)
    assert seen[:3] == pytest.approx([0.9, 0.81, 0.729])
    assert min(seen) == 0.5
    assert seen[-1] == 0.5
    assert all(b <= a for a, b in itertools.pairwise(seen))


def test_epsilon_below_the_floor_is_raised_to_it() -> None:
    learner = SeedLearner(SeedParams(epsilon=0.05, epsilon_min=0.1))
    state = learner.initial_state(5)
    assert state.epsilon == 0.05
    learner.update(state, ROCK, POP, 1.0, POP)
    assert state.epsilon == 0.1


def test_defaults_are_the_seeds() -> None:
    assert SeedParams().as_dict() == {
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
        SeedParams(**{field: value})
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
    SeedParams(**kwargs)


def test_fresh_states_start_at_zero() -> None:
    st = SeedLearner().initial_state(5)
    assert st.q.shape == (5, 5)
    assert not st.q.any()
    assert st.epsilon == 1.0
    bs = BatchState.fresh(7, 5, 0.5)
    assert bs.q.shape == (7, 5, 5)
    assert not bs.q.any()
    np.testing.assert_array_equal(bs.epsilon, 0.5)
