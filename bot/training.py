"""Training a learner against a simulated listener: one unbroken chain, as in the seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.agent import DEFAULT_GENRES, LearnerState
from bot.learners import Learner
from bot.simulator import SimulatedUser, sample_reward


@dataclass
class TrainingLog:
    """Per-step logs of one chain (the seed notebook's reward, action and ε lists)."""

    genres: tuple[str, ...]
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    epsilons: np.ndarray
    state: LearnerState

    @property
    def mean_reward(self) -> float:
        return float(self.rewards.mean()) if self.rewards.size else 0.0

    @property
    def mean_reward_last_100(self) -> float:
        return float(self.rewards[-100:].mean()) if self.rewards.size else 0.0


def run_chain(
    learner: Learner,
    user: SimulatedUser,
    episodes: int,
    rng: np.random.Generator,
    genres: Sequence[str] = DEFAULT_GENRES,
    state: LearnerState | None = None,
    start: int | None = None,
) -> TrainingLog:
    """Run ``episodes`` steps from a random start genre (or ``start``), mutating ``state``.

    The next state is always the genre just suggested, whatever the reward.
    """
    genres = tuple(genres)
    n = len(genres)
    st = state if state is not None else learner.initial_state(n)
    probs = user.reward_probs(genres)
    s = int(rng.integers(n)) if start is None else int(start)
    states = np.empty(episodes, dtype=np.int64)
    actions = np.empty(episodes, dtype=np.int64)
    rewards = np.empty(episodes, dtype=np.float64)
    epsilons = np.empty(episodes, dtype=np.float64)
    for t in range(episodes):
        a = learner.select(st, s, rng)
        r = sample_reward(probs[s, a], rng)
        states[t], actions[t], rewards[t], epsilons[t] = s, a, r, st.epsilon
        learner.update(st, s, a, r, a)
        s = a
    return TrainingLog(genres, states, actions, rewards, epsilons, st)
