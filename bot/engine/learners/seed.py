"""The seed deck's algorithm, unchanged, so the deck's results can always be reproduced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bot.engine.learners import seed_fast
from bot.engine.learners.base import DEFAULT_REWARDS, Progress, Rewards
from bot.engine.logs import BatchLog, TrainingLog
from bot.engine.qlearning import (
    BatchState,
    LearnerState,
    check_range,
    epsilon_greedy,
    greedy_batch,
    remap_state,
    td_update,
    td_update_batch,
)


@dataclass(frozen=True, slots=True)
class SeedParams:
    """The seed deck's hyper-parameters (and its defaults): fixed α, ε decayed per step."""

    alpha: float = 0.1
    gamma: float = 0.9
    epsilon: float = 1.0
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.1

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, 0.0, 1.0, lo_open=True, hi_open=False)
        check_range("gamma", self.gamma, 0.0, 1.0, lo_open=False, hi_open=True)
        check_range("epsilon", self.epsilon, 0.0, 1.0, lo_open=False, hi_open=False)
        check_range("epsilon_min", self.epsilon_min, 0.0, 1.0, lo_open=False, hi_open=False)
        check_range("epsilon_decay", self.epsilon_decay, 0.0, 1.0, lo_open=True, hi_open=False)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class SeedLearner:
    """The seed deck's algorithm: fixed α, ε decayed per step, ε-greedy (ties at random).

    It has no reward model, so the bot's reward range (``rewards``) is accepted, like
    every learner's, and not used.
    """

    name = "seed"
    params_type = SeedParams
    uses_community_prior = False  # every table starts at zero

    def __init__(self, params: SeedParams | None = None, *, rewards: Rewards | None = None) -> None:
        self.params = params or SeedParams()
        self._rewards: Rewards = DEFAULT_REWARDS if rewards is None else rewards

    @property
    def reward_range(self) -> Rewards:
        return self._rewards

    def initial_state(self, n_genres: int) -> LearnerState:
        return LearnerState.fresh(n_genres, self.params.epsilon)

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        return epsilon_greedy(state.q[s], state.epsilon, rng)

    def selection_probabilities(
        self, state: LearnerState, s: int, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """P(select = a) for every genre a, exactly: ε spread evenly, the rest on the tied
        best genres (their propensities for offline evaluation)."""
        row = state.q[s]
        best = row == row.max()
        return state.epsilon / row.size + (1.0 - state.epsilon) * best / best.sum()

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        p = self.params
        td = td_update(state.q, s, a, r, s_next, p.alpha, p.gamma)
        state.visits[s, a] += 1
        state.reward_sum[s, a] += r
        state.epsilon = max(p.epsilon_min, state.epsilon * p.epsilon_decay)
        return td

    def adapt(
        self, state: LearnerState, old_genres: Sequence[str], new_genres: Sequence[str]
    ) -> LearnerState:
        """The seed's rule: a new genre starts at Q = 0, like every cell of a fresh table."""
        return remap_state(state, old_genres, new_genres)

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

    # --- the fused loops (see seed_fast) ----------------------------------------------
    def _unchanged(self, *methods: str) -> bool:
        """True unless a subclass overrides one of ``methods``: then its own rule must run."""
        cls = type(self)
        return all(getattr(cls, m) is getattr(SeedLearner, m) for m in methods)

    def run_chain_fast(
        self,
        state: LearnerState,
        probs: np.ndarray,
        s: int,
        episodes: int,
        rng: np.random.Generator,
        genres: tuple[str, ...],
        progress: Progress,
    ) -> TrainingLog | None:
        """The chain of :func:`bot.engine.training.run_chain` in plain Python."""
        if not self._unchanged("select", "update"):
            return None
        return seed_fast.seed_chain(self.params, state, probs, s, episodes, rng, genres, progress)

    def train_batch_fast(
        self,
        bs: BatchState,
        probs: np.ndarray,
        s: np.ndarray,
        steps: int,
        rng: np.random.Generator,
    ) -> BatchLog | None:
        """The loop of :func:`bot.engine.batch_training.train_batch` with few numpy calls.

        It needs every user at the same ε (a fresh batch), which it checks.
        """
        if not self._unchanged("select_batch", "update_batch", "init_batch"):
            return None
        if bs.epsilon.size and not (bs.epsilon == bs.epsilon[0]).all():
            return None
        return seed_fast.seed_batch(self.params, bs, probs, s, steps, rng)
