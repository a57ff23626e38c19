"""Pluggable learners. Each one keeps a Q-table and updates it by TD.

The service, the simulators and the CLI only see the :class:`Learner` protocol,
so the seed's algorithm stays available unchanged as ``seed`` next to better ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from bot.agent import (
    AgentParams,
    BatchState,
    LearnerState,
    decay_epsilon,
    epsilon_greedy,
    greedy_batch,
    td_update,
    td_update_batch,
)
from bot.learner_dyna import DynaLearner


class Learner(Protocol):
    """How one listener's state is initialised, acted on and updated."""

    name: str
    params: AgentParams

    def initial_state(self, n_genres: int) -> LearnerState:
        """A fresh state for a new listener."""
        ...

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        """The genre index to suggest from current genre ``s``."""
        ...

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        """Apply one rewarded step in place and return the TD error."""
        ...


class SeedLearner:
    """The seed deck's algorithm: fixed α, ε decayed per step, ε-greedy (ties at random)."""

    name = "seed"

    def __init__(self, params: AgentParams | None = None) -> None:
        self.params = params or AgentParams()

    def initial_state(self, n_genres: int) -> LearnerState:
        return LearnerState.fresh(n_genres, self.params.epsilon)

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        return epsilon_greedy(state.q[s], state.epsilon, rng)

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        td = td_update(state.q, s, a, r, s_next, self.params.alpha, self.params.gamma)
        state.visits[s, a] += 1
        state.reward_sum[s, a] += r
        state.epsilon = decay_epsilon(state.epsilon, self.params)
        return td

    def init_batch(self, n_users: int, n_genres: int) -> BatchState:
        return BatchState.fresh(n_users, n_genres, self.params.epsilon)

    def select_batch(self, bs: BatchState, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n_users, n = bs.q.shape[0], bs.q.shape[1]
        greedy = greedy_batch(bs.q[np.arange(n_users), s], rng)
        explore = rng.random(n_users) < bs.epsilon
        return np.where(explore, rng.integers(n, size=n_users), greedy)

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> None:
        p = self.params
        td_update_batch(bs.q, s, a, r, s_next, p.alpha, p.gamma)
        idx = np.arange(bs.q.shape[0])
        bs.visits[idx, s, a] += 1
        bs.reward_sum[idx, s, a] += r
        np.maximum(bs.epsilon * p.epsilon_decay, p.epsilon_min, out=bs.epsilon)


class BatchLearner(Learner, Protocol):
    """A learner that can also train many independent listeners at once (users axis first).

    Each call advances every user one step; this is what makes ``compare`` and the
    benchmarks fast (numpy over the users axis instead of a Python loop per user).
    """

    def init_batch(self, n_users: int, n_genres: int) -> BatchState: ...

    def select_batch(
        self, bs: BatchState, s: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> None: ...


LEARNERS: dict[str, Callable[[AgentParams], BatchLearner]] = {
    "seed": SeedLearner,
    "dyna": DynaLearner,
}
DEFAULT_LEARNER = "dyna"


def make_learner(
    name: str | None = None,
    params: AgentParams | None = None,
    *,
    rewards: tuple[float, float] | None = None,
) -> BatchLearner:
    """Build a learner by name; an unknown name raises ValueError listing the known ones.

    ``rewards=(dislike, like)`` tells learners with a reward model (``uses_reward_range``)
    the bot's reward range; None keeps their default (−5/+10), the others ignore it.
    """
    key = (name or DEFAULT_LEARNER).strip().lower()
    if key not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; choose one of {', '.join(sorted(LEARNERS))}")
    factory = LEARNERS[key]
    if rewards is not None and getattr(factory, "uses_reward_range", False):
        return factory(params or AgentParams(), rewards=rewards)
    return factory(params or AgentParams())
