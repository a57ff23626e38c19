"""The seed deck's algorithm, unchanged, so the deck's results can always be reproduced."""

from __future__ import annotations

import numpy as np

from bot.engine.qlearning import (
    AgentParams,
    BatchState,
    LearnerState,
    decay_epsilon,
    epsilon_greedy,
    greedy_batch,
    td_update,
    td_update_batch,
)


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
