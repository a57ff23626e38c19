"""What a training run returns: per-step logs plus the final state(s).

Kept apart from the trainers so that a learner's own fused loops (the seed's fast
paths) can build the same logs without importing the trainers that call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.qlearning import BatchState, LearnerState


@dataclass
class TrainingLog:
    """Per-step logs of one chain (the seed notebook's reward, action and ε lists)."""

    genres: tuple[str, ...]
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    epsilons: np.ndarray
    state: LearnerState
    explored: np.ndarray | None = None
    """Per step, whether the pick was not a greedy genre of the table it was made from.
    The generic path records it (dyna's "exploration" is this); the seed's fast path, whose
    exploration is its ε, leaves it None."""

    @property
    def mean_reward(self) -> float:
        return float(self.rewards.mean()) if self.rewards.size else 0.0

    @property
    def mean_reward_last_100(self) -> float:
        return float(self.rewards[-100:].mean()) if self.rewards.size else 0.0


@dataclass
class BatchLog:
    """Per-step logs, shape (steps, users), plus every user's final state."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    state: BatchState


def chain_log(
    st: LearnerState,
    start: int,
    actions: Sequence[int],
    rewards: Sequence[float],
    epsilons: Sequence[float],
    genres: tuple[str, ...],
) -> TrainingLog:
    """The log of a chain whose loop kept only actions and rewards.

    The states follow from the actions (next state = suggestion), and the ``visits``
    and ``reward_sum`` of ``st`` are counted from them, all at once.
    """
    n = len(genres)
    acts = np.array(actions, dtype=np.int64)
    rews = np.array(rewards, dtype=np.float64)
    states = np.empty_like(acts)
    if acts.size:
        states[0] = start
        states[1:] = acts[:-1]
    cells = states * n + acts
    st.visits += np.bincount(cells, minlength=n * n).reshape(n, n).astype(st.visits.dtype)
    st.reward_sum += np.bincount(cells, weights=rews, minlength=n * n).reshape(n, n)
    return TrainingLog(genres, states, acts, rews, np.array(epsilons, dtype=np.float64), st)


def batch_log(
    bs: BatchState, start: np.ndarray, actions: np.ndarray, rewards: np.ndarray
) -> BatchLog:
    """:func:`chain_log` for (steps, users) logs: derive states, ``visits``, ``reward_sum``."""
    steps, n_users = actions.shape
    n = bs.q.shape[1]
    states = np.empty_like(actions)
    if steps:
        states[0] = start
        states[1:] = actions[:-1]
    size = n_users * n * n
    wide = np.int32 if size < 2**31 else np.int64
    base = np.arange(n_users, dtype=wide) * (n * n)
    chunk = max(1, 4_000_000 // n_users)
    visits, reward_sum = bs.visits.reshape(-1), bs.reward_sum.reshape(-1)
    for t0 in range(0, steps, chunk):
        part = slice(t0, t0 + chunk)
        cells = (states[part].astype(wide) * n + actions[part] + base).reshape(-1)
        visits += np.bincount(cells, minlength=size).astype(visits.dtype)
        reward_sum += np.bincount(cells, weights=rewards[part].reshape(-1), minlength=size)
    return BatchLog(states, actions, rewards, bs)
