"""Batched training: reproducible, each user an independent seed-style chain, random
ties, and the seed's fused loop agreeing with the generic select/update loop."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.batch_training import train_batch
from bot.engine.learners import LEARNERS, SeedLearner, SeedParams, make_learner
from bot.engine.listeners import GENERIC, REWARDS, SimulatedUser, preference_probs, resolve_user
from bot.engine.qlearning import td_update

POP_PROBS = resolve_user("pop_lover").reward_probs()

PATHS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "generic"])


def batch(
    fused: bool = True, users: int = 50, steps: int = 300, seed: int = 0, probs=POP_PROBS, **p
):
    """The seed learner through its fused loop, or (``fused=False``) the generic one."""
    learner = SeedLearner(SeedParams(**p))
    return train_batch(learner, probs, users, steps, np.random.default_rng(seed), fast=fused)


@PATHS
def test_same_seed_same_batch(fused) -> None:
    a, b = batch(fused, seed=3), batch(fused, seed=3)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    np.testing.assert_array_equal(a.state.q, b.state.q)
    assert not np.array_equal(a.actions, batch(fused, seed=4).actions)


@PATHS
def test_logs_shape_and_next_state(fused) -> None:
    log = batch(fused, users=20, steps=40)
    assert log.states.shape == log.actions.shape == log.rewards.shape == (40, 20)
    np.testing.assert_array_equal(log.states[1:], log.actions[:-1])
    assert set(np.unique(log.rewards).tolist()) <= set(REWARDS.tolist())


@PATHS
def test_every_user_is_the_td_rule_replayed(fused) -> None:
    log = batch(fused, users=6, steps=400, seed=5)
    for u in range(6):
        q = np.zeros((5, 5))
        for s, a, r in zip(log.states[:, u], log.actions[:, u], log.rewards[:, u], strict=True):
            td_update(q, int(s), int(a), float(r), int(a), 0.1, 0.9)
        np.testing.assert_allclose(log.state.q[u], q, rtol=1e-12, atol=1e-12)


@PATHS
def test_counts_epsilon_and_user_view(fused) -> None:
    log = batch(fused, users=8, steps=250, seed=6, epsilon_decay=0.99, epsilon_min=0.2)
    visits = np.zeros((8, 5, 5), dtype=np.int64)
    sums = np.zeros((8, 5, 5))
    users = np.broadcast_to(np.arange(8), log.states.shape)
    np.add.at(visits, (users, log.states, log.actions), 1)
    np.add.at(sums, (users, log.states, log.actions), log.rewards)
    np.testing.assert_array_equal(log.state.visits, visits)
    np.testing.assert_allclose(log.state.reward_sum, sums)
    np.testing.assert_allclose(log.state.epsilon, max(0.2, 0.99**250))
    one = log.state.user(3)
    np.testing.assert_array_equal(one.q, log.state.q[3])


@PATHS
def test_first_picks_break_ties_at_random(fused) -> None:
    log = batch(fused, users=5000, steps=1, seed=7, epsilon=0.0)
    counts = np.bincount(log.actions[0], minlength=5)
    assert counts.min() > 0.8 * 1000, counts


@PATHS
def test_exploration_rate_is_epsilon(fused) -> None:
    """ε = 1 for every step: suggestions are uniform whatever the table says."""
    log = batch(fused, users=2000, steps=20, seed=8, epsilon=1.0, epsilon_decay=1.0)
    share = np.bincount(log.actions.ravel().astype(np.int64), minlength=5) / log.actions.size
    np.testing.assert_allclose(share, 0.2, atol=0.01)


def test_fused_and_generic_paths_agree_statistically() -> None:
    users = 1500
    fused = batch(True, users=users, steps=400, seed=10)
    generic = batch(False, users=users, steps=400, seed=11)
    for log_a, log_b in ((fused, generic),):
        ra = log_a.rewards[-100:].mean(axis=0)
        rb = log_b.rewards[-100:].mean(axis=0)
        se = np.sqrt(ra.var() / users + rb.var() / users)
        assert abs(ra.mean() - rb.mean()) < 4 * se
        pa = (log_a.actions[-100:] == 0).mean(axis=0)
        pb = (log_b.actions[-100:] == 0).mean(axis=0)
        se_p = np.sqrt(pa.var() / users + pb.var() / users)
        assert abs(pa.mean() - pb.mean()) < 4 * se_p


def test_generic_user_reward_frequencies_in_the_fused_loop() -> None:
    log = batch(users=1000, steps=100, seed=12, probs=GENERIC.reward_probs())
    freq = [float(np.mean(log.rewards == r)) for r in REWARDS]
    assert freq == pytest.approx([0.1, 0.3, 0.6], abs=0.01)


@PATHS
def test_per_user_probabilities(fused) -> None:
    """Half the users hate Pop, half love it: their own tables must show it."""
    users = 400
    prefs = np.full((users, 5, 5), 0.5)
    prefs[: users // 2, :, 0] = 1.0  # P(+10 | Pop) = 1
    prefs[users // 2 :, :, 0] = 0.0  # P(−5 | Pop) = 0.2
    probs = preference_probs(prefs)
    log = batch(fused, users=users, steps=200, seed=13, probs=probs, epsilon_decay=1.0)
    pop = log.actions == 0
    lovers, haters = log.rewards[:, : users // 2], log.rewards[:, users // 2 :]
    assert set(lovers[pop[:, : users // 2]].tolist()) == {10.0}
    assert np.mean(haters[pop[:, users // 2 :]] == -5.0) == pytest.approx(0.2, abs=0.03)


def test_shared_and_stacked_probabilities_give_the_same_run() -> None:
    stacked = np.broadcast_to(POP_PROBS, (30, 5, 5, 3)).copy()
    a = batch(users=30, steps=100, seed=14)
    b = batch(users=30, steps=100, seed=14, probs=stacked)
    np.testing.assert_array_equal(a.actions, b.actions)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_registered_learner_trains_in_batch(name: str) -> None:
    learner = make_learner(name)
    log = train_batch(learner, POP_PROBS, 4, 12, np.random.default_rng(0))
    assert log.actions.shape == (12, 4)
    assert np.isfinite(log.state.q).all()
    np.testing.assert_array_equal(log.states[1:], log.actions[:-1])


def test_state_dependent_profile_in_batch() -> None:
    user = SimulatedUser("late", {"Jazz": 0.0}, {"Classical": {"Jazz": 1.0}})
    log = batch(users=300, steps=200, seed=15, probs=user.reward_probs(), epsilon_decay=1.0)
    jazz_after_classical = (log.states == 3) & (log.actions == 2)
    jazz_elsewhere = (log.states != 3) & (log.actions == 2)
    assert set(log.rewards[jazz_after_classical].tolist()) == {10.0}
    assert np.mean(log.rewards[jazz_elsewhere] == -5.0) == pytest.approx(0.2, abs=0.03)


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_users"):
        train_batch(SeedLearner(), POP_PROBS, 0, 10, np.random.default_rng(0))
    log = train_batch(SeedLearner(), POP_PROBS, 3, 0, np.random.default_rng(0))
    assert log.actions.shape == (0, 3)


def test_a_subclass_that_changes_the_rule_gets_the_generic_loop() -> None:
    """The fused loop is the seed's own: a subclass with another choice rule must run it."""

    class AlwaysRock(SeedLearner):
        def select_batch(self, bs, s, rng):  # type: ignore[no-untyped-def]
            return np.full(s.shape, 1)

    log = train_batch(AlwaysRock(), POP_PROBS, 10, 30, np.random.default_rng(0))
    assert set(log.actions.ravel().tolist()) == {1}
