"""One training chain: reproducible by seed, next state = action, the ε schedule, random
ties, and the fast path (seed learner) agreeing with the generic per-step path."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from bot.engine.learners import SeedLearner, SeedParams
from bot.engine.learners.seed_fast import BLOCK
from bot.engine.listeners import GENERIC, REWARDS, SimulatedUser, resolve_user
from bot.engine.qlearning import LearnerState, remap_state, td_update
from bot.engine.training import run_chain

POP_LOVER = resolve_user("pop_lover")
PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])


def chain(seed: int, episodes: int = 500, fast: bool = True, **params: float):
    learner = SeedLearner(SeedParams(**params))
    return run_chain(learner, POP_LOVER, episodes, np.random.default_rng(seed), fast=fast)


@PATHS
def test_same_seed_same_run(fast: bool) -> None:
    a, b = chain(11, fast=fast), chain(11, fast=fast)
    for name in ("states", "actions", "rewards", "epsilons"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.state.q, b.state.q)
    c = chain(12, fast=fast)
    assert not np.array_equal(a.actions, c.actions)


@PATHS
def test_next_state_is_the_action(fast: bool) -> None:
    log = chain(2, fast=fast)
    np.testing.assert_array_equal(log.states[1:], log.actions[:-1])
    assert set(np.unique(log.rewards)) <= set(REWARDS.tolist())


@PATHS
def test_start_genre_is_honoured(fast: bool) -> None:
    log = run_chain(SeedLearner(), GENERIC, 5, np.random.default_rng(0), start=3, fast=fast)
    assert log.states[0] == 3


@PATHS
def test_epsilon_schedule_in_the_log(fast: bool) -> None:
    log = chain(3, episodes=600, fast=fast, epsilon=1.0, epsilon_decay=0.99, epsilon_min=0.2)
    t = np.arange(600)
    np.testing.assert_allclose(log.epsilons, np.maximum(0.2, 0.99**t), rtol=1e-9)
    assert log.epsilons.min() == 0.2  # the floor is reached and held
    assert log.state.epsilon == 0.2


@PATHS
def test_q_table_is_the_td_rule_replayed_over_the_log(fast: bool) -> None:
    """Replaying the logged steps through td_update rebuilds the final table."""
    log = chain(4, episodes=3000, fast=fast)
    q = np.zeros((5, 5))
    for s, a, r in zip(log.states, log.actions, log.rewards, strict=True):
        td_update(q, int(s), int(a), float(r), int(a), 0.1, 0.9)
    np.testing.assert_allclose(log.state.q, q, rtol=1e-12, atol=1e-12)


@PATHS
def test_visit_counts_and_reward_sums_follow_the_log(fast: bool) -> None:
    log = chain(5, episodes=2000, fast=fast)
    visits = np.zeros((5, 5), dtype=np.int64)
    sums = np.zeros((5, 5))
    np.add.at(visits, (log.states, log.actions), 1)
    np.add.at(sums, (log.states, log.actions), log.rewards)
    np.testing.assert_array_equal(log.state.visits, visits)
    np.testing.assert_allclose(log.state.reward_sum, sums)


@PATHS
def test_greedy_ties_are_random_in_training(fast: bool) -> None:
    """ε = 0 on a fresh table: every genre ties, so the first pick must vary."""
    firsts = [
        run_chain(
            SeedLearner(SeedParams(epsilon=0.0)),
            GENERIC,
            1,
            np.random.default_rng(seed),
            fast=fast,
        ).actions[0]
        for seed in range(500)
    ]
    counts = np.bincount(firsts, minlength=5)
    assert counts.min() > 60, counts  # ≈ 100 each; index 0 every time would fail


@PATHS
def test_exploration_share_follows_epsilon(fast: bool) -> None:
    """With ε fixed at 0.5, about ε·4/5 of the picks are not the greedy one."""
    state = LearnerState(np.tile([0.0, 0.0, 50.0, 0.0, 0.0], (5, 1)), 0.5)
    # α tiny so the table keeps Jazz clearly on top during the run
    learner = SeedLearner(SeedParams(alpha=1e-6, epsilon=0.5, epsilon_decay=1.0, epsilon_min=0.5))
    log = run_chain(learner, GENERIC, 10_000, np.random.default_rng(8), state=state, fast=fast)
    assert np.mean(log.actions != 2) == pytest.approx(0.4, abs=0.025)


def test_state_is_continued_when_passed_in() -> None:
    learner = SeedLearner()
    rng = np.random.default_rng(9)
    first = run_chain(learner, POP_LOVER, 300, rng)
    second = run_chain(learner, POP_LOVER, 300, rng, state=first.state, start=first.actions[-1])
    assert second.state is first.state
    assert first.state.visits.sum() == 600
    assert second.epsilons[0] == pytest.approx(max(0.1, 0.995**300))


def test_fast_and_generic_paths_agree_statistically() -> None:
    """Same process, different use of the Generator: compare means over many seeds."""
    seeds, steps = 30, 1000

    def stats(fast: bool) -> tuple[np.ndarray, np.ndarray]:
        logs = [chain(1000 + k, episodes=steps, fast=fast) for k in range(seeds)]
        rewards = np.array([log.rewards[-500:].mean() for log in logs])
        pop = np.array([np.mean(log.actions[-500:] == 0) for log in logs])
        return rewards, pop

    (r_fast, p_fast), (r_gen, p_gen) = stats(True), stats(False)
    se = np.sqrt(r_fast.var(ddof=1) / seeds + r_gen.var(ddof=1) / seeds)
    assert abs(r_fast.mean() - r_gen.mean()) < 4 * se + 0.05
    se_p = np.sqrt(p_fast.var(ddof=1) / seeds + p_gen.var(ddof=1) / seeds)
    assert abs(p_fast.mean() - p_gen.mean()) < 4 * se_p + 0.02


def test_progress_is_reported_without_changing_the_run() -> None:
    seen: list[int] = []
    steps = 2 * BLOCK + 5
    with_bar = run_chain(
        SeedLearner(), POP_LOVER, steps, np.random.default_rng(1), progress=seen.append
    )
    without = run_chain(SeedLearner(), POP_LOVER, steps, np.random.default_rng(1))
    assert seen == [BLOCK, 2 * BLOCK, steps]
    np.testing.assert_array_equal(with_bar.actions, without.actions)


def test_zero_and_negative_episodes() -> None:
    log = run_chain(SeedLearner(), POP_LOVER, 0, np.random.default_rng(0))
    assert log.rewards.size == 0
    assert log.mean_reward == 0.0
    assert not log.state.q.any()
    with pytest.raises(ValueError, match="episodes"):
        run_chain(SeedLearner(), POP_LOVER, -1, np.random.default_rng(0))


class AlwaysJazz:
    """A minimal non-seed learner (no fused loop): the generic loop serves any Learner."""

    name = "jazz"
    params = SeedParams()
    choice = 2

    def initial_state(self, n_genres: int) -> LearnerState:
        return LearnerState.fresh(n_genres, 0.0)

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        return self.choice

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        state.visits[s, a] += 1
        return 0.0

    def adapt(self, state: LearnerState, old: Sequence[str], new: Sequence[str]) -> LearnerState:
        return remap_state(state, old, new)


def test_other_learners_use_the_generic_path() -> None:
    log = run_chain(AlwaysJazz(), SimulatedUser("j", {"Jazz": 1.0}), 50, np.random.default_rng(0))
    assert set(log.actions.tolist()) == {2}
    assert set(log.rewards[1:].tolist()) == {10.0}


def test_a_subclass_that_changes_the_rule_gets_the_generic_path() -> None:
    """The fused loop is the seed's own rule: a subclass's ``select`` must be honoured."""

    class AlwaysRock(SeedLearner):
        def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
            return 1

    log = run_chain(AlwaysRock(), POP_LOVER, 40, np.random.default_rng(0))
    assert set(log.actions.tolist()) == {1}


class PopThenJazz(AlwaysJazz):
    """Suggests Pop (which this listener dislikes) for the first steps, then only Jazz."""

    def __init__(self, pop_steps: int) -> None:
        self.left = pop_steps

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        self.left -= 1
        return 0 if self.left >= 0 else 2


def test_mean_rewards_summarise_the_whole_run_and_its_end() -> None:
    """Jazz always earns +10 here and Pop never does: the last-100 mean sees only Jazz."""
    user = SimulatedUser("j", {"Jazz": 1.0, "Pop": 0.0})
    log = run_chain(PopThenJazz(150), user, 250, np.random.default_rng(1))
    assert log.mean_reward_last_100 == 10.0
    assert log.mean_reward < 10.0  # the Pop steps count in the overall mean
    late = run_chain(PopThenJazz(160), user, 250, np.random.default_rng(1))
    assert late.mean_reward_last_100 < 10.0  # ten Pop steps fall in the last 100
    empty = run_chain(AlwaysJazz(), user, 0, np.random.default_rng(1))
    assert (empty.mean_reward, empty.mean_reward_last_100) == (0.0, 0.0)
