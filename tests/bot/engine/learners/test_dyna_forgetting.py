"""``dyna``'s adaptive forgetting: the change detector, what a change forgets, that the
history (``visits``/``reward_sum``) is never rescaled, scalar and batch paths agree, and
that it follows a change of taste without costing a stationary listener much."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.engine.batch_training import Stretch, train_stretches
from bot.engine.learners import DynaLearner, make_learner
from bot.engine.learners.dyna import DynaParams
from bot.engine.learners.dyna.forgetting import (
    DRIFT,
    REWARD_SUM,
    VISITS,
    ChangeConfig,
    evidence_of_fall,
    evidence_of_fall_scalar,
    observe_batch,
)
from bot.engine.listeners import resolve_user
from bot.engine.qlearning import DEFAULT_GENRES as G
from bot.engine.qlearning import LearnerState

POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)
LOW, HIGH = -5.0, 10.0


def pop_then_jazz_regret(learner_name: str, config: DynaParams | None, seeds: int) -> float:
    """Regret over the 300 steps after pop_lover turns jazz_enthusiast at step 300."""
    pop, jazz = resolve_user("pop_lover"), resolve_user("jazz_enthusiast")
    learner = make_learner(learner_name) if config is None else DynaLearner(config)
    stretches = [Stretch(300, pop.reward_probs(G)), Stretch(300, jazz.reward_probs(G))]
    log = train_stretches(learner, stretches, seeds, np.random.default_rng(11))
    e = jazz.expected_rewards(G)
    s, a = log.states[300:].astype(int), log.actions[300:].astype(int)
    return float((e[s, JAZZ] - e[s, a]).sum(axis=0).mean())


# --- the detector ---------------------------------------------------------------------
def test_evidence_is_negative_while_the_model_is_right_and_positive_after_a_fall() -> None:
    cfg = ChangeConfig()
    liked, rest = 95.0, 5.0  # a cell liked 95 times in 100
    fav = (1 + liked, 1 + rest)
    stay = 0.95 * evidence_of_fall(*map(np.array, fav), np.array(1.0), cfg) + 0.05 * (
        evidence_of_fall(*map(np.array, fav), np.array(0.0), cfg)
    )
    fallen = 0.55 * evidence_of_fall(*map(np.array, fav), np.array(1.0), cfg) + 0.45 * (
        evidence_of_fall(*map(np.array, fav), np.array(0.0), cfg)
    )
    assert stay < 0 < fallen


def test_a_weakly_known_cell_is_hard_to_surprise() -> None:
    cfg = ChangeConfig()
    known = evidence_of_fall_scalar(1 + 95.0, 1 + 5.0, 0.0, cfg)
    barely = evidence_of_fall_scalar(1 + 1.0, 1 + 0.0, 0.0, cfg)
    assert known > 2 * barely > 0


@pytest.mark.parametrize("x", [0.0, 0.4, 1.0])
def test_scalar_and_array_evidence_agree(x: float) -> None:
    cfg = ChangeConfig()
    for al, be in [(2.0, 1.0), (40.0, 3.5), (1.0, 1.0), (7.25, 9.5)]:
        ref = float(evidence_of_fall(np.array(al), np.array(be), np.array(x), cfg))
        assert evidence_of_fall_scalar(al, be, x, cfg) == pytest.approx(ref, abs=1e-9)


def test_observe_counts_then_forgets_on_an_alarm() -> None:
    cfg = ChangeConfig(threshold=1.0, keep_changed=0.5, keep_others=0.25)
    memory = np.zeros((2, 3, 5, 5))
    memory[:, VISITS] = 4.0
    memory[:, REWARD_SUM] = 4.0 * HIGH  # every cell liked 4 of 4 times
    memory[1, DRIFT, POP, POP] = 5.0  # listener 1 is already close to an alarm
    s = a = np.array([POP, POP])
    alarm = observe_batch(memory, s, a, np.array([HIGH, LOW]), LOW, HIGH, cfg)
    assert alarm.tolist() == [False, True]
    # listener 0: counted, nothing forgotten
    assert memory[0, VISITS, POP, POP] == 5.0
    assert memory[0, VISITS].sum() == 4.0 * 25 + 1
    # listener 1: the changed column halved, the rest quartered, then the 👎 counted
    assert memory[1, VISITS, ROCK, POP] == 2.0
    assert memory[1, VISITS, ROCK, JAZZ] == 1.0
    assert memory[1, VISITS, POP, POP] == 3.0
    assert memory[1, REWARD_SUM, POP, POP] == 2.0 * HIGH + LOW
    assert not memory[1, DRIFT].any()


def test_the_history_is_never_rescaled_only_the_working_memory() -> None:
    learner = DynaLearner(DynaParams(change=ChangeConfig(threshold=0.5)))
    state = learner.initial_state(5)
    for _ in range(30):
        learner.update(state, POP, POP, HIGH, POP)
    for _ in range(10):
        learner.update(state, POP, POP, LOW, POP)
    assert state.visits[POP, POP] == 40
    assert state.reward_sum[POP, POP] == 30 * HIGH + 10 * LOW
    assert state.memory is not None
    assert state.memory[VISITS, POP, POP] < 40  # a change was detected and forgotten


def test_forgetting_can_be_switched_off() -> None:
    off = DynaParams(change=ChangeConfig(threshold=math.inf))
    learner = DynaLearner(off)
    state = learner.initial_state(5)
    for r in [HIGH] * 50 + [LOW] * 50:
        learner.update(state, POP, POP, r, POP)
    assert state.memory is not None
    np.testing.assert_array_equal(state.memory[VISITS], state.visits)
    np.testing.assert_array_equal(state.memory[REWARD_SUM], state.reward_sum)


def test_a_stored_table_without_memory_starts_from_its_history() -> None:
    learner = DynaLearner()
    state = LearnerState.fresh(5, 0.5)
    state.visits[ROCK, ROCK], state.reward_sum[ROCK, ROCK] = 20, 20 * HIGH
    twin = state.copy()
    learner.update(state, JAZZ, POP, HIGH, POP)
    assert state.memory is not None
    assert state.memory[VISITS, ROCK, ROCK] == 20
    # the same update on a twin whose memory is given explicitly gives the same table
    twin.memory = np.zeros((3, 5, 5))
    twin.memory[VISITS], twin.memory[REWARD_SUM] = twin.visits, twin.reward_sum
    DynaLearner().update(twin, JAZZ, POP, HIGH, POP)
    np.testing.assert_allclose(state.q, twin.q)


def test_scalar_and_batch_paths_forget_alike() -> None:
    """One listener's reactions through update() and through update_batch() (users of
    one) give the same memory and table, alarms included."""
    cfg = DynaParams(change=ChangeConfig(threshold=2.0))
    rng = np.random.default_rng(3)
    rewards = [HIGH] * 25 + list(rng.choice([LOW, 1.0, HIGH], size=40, p=[0.5, 0.2, 0.3]))
    cells = rng.integers(2, size=(len(rewards), 2))  # few cells, so they get known
    one, many = DynaLearner(cfg), DynaLearner(cfg)
    state, bs = one.initial_state(5), many.init_batch(1, 5)
    for (s, a), r in zip(cells, rewards, strict=True):
        one.update(state, int(s), int(a), float(r), int(a))
        many.update_batch(bs, np.array([s]), np.array([a]), np.array([r]), np.array([a]))
    assert state.memory is not None
    assert bs.memory is not None
    np.testing.assert_allclose(state.memory, bs.memory[0], atol=1e-9)
    np.testing.assert_allclose(state.q, bs.q[0], atol=1e-6)
    assert state.memory[VISITS].sum() < len(rewards)  # an alarm really happened


# --- what it is for ---------------------------------------------------------------------
def test_follows_a_change_of_taste_far_better_than_without_forgetting() -> None:
    off = DynaParams(change=ChangeConfig(threshold=math.inf))
    adaptive = pop_then_jazz_regret("dyna", None, 60)
    static = pop_then_jazz_regret("dyna", off, 60)
    assert adaptive < 0.5 * static, (adaptive, static)


def test_costs_a_stationary_listener_little() -> None:
    user = resolve_user("rock_fan")
    regret = {}
    for name, cfg in {
        "on": None,
        "off": DynaParams(change=ChangeConfig(threshold=math.inf)),
    }.items():
        learner = DynaLearner() if cfg is None else DynaLearner(cfg)
        log = train_stretches(
            learner, [Stretch(600, user.reward_probs(G))], 60, np.random.default_rng(5)
        )
        e = user.expected_rewards(G)
        s, a = log.states.astype(int), log.actions.astype(int)
        regret[name] = float((e[s, ROCK] - e[s, a]).sum(axis=0).mean())
    assert regret["on"] < 1.5 * regret["off"] + 20, regret
