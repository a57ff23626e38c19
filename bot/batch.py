"""Batched training: many independent listeners at once, numpy over a users axis.

Each user runs its own unbroken chain, exactly like :func:`bot.training.run_chain`,
but one Python iteration advances all of them. ``compare`` and the benchmarks use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.agent import BatchState
from bot.learners import BatchLearner
from bot.simulator import REWARDS


@dataclass
class BatchLog:
    """Per-step logs, shape (steps, users), plus every user's final state."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    state: BatchState


def sample_rewards_batch(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One reward per row of a (U, 3) probability array."""
    u = rng.random(p.shape[0])
    return np.where(
        u < p[:, 0], REWARDS[0], np.where(u < p[:, 0] + p[:, 1], REWARDS[1], REWARDS[2])
    )


def train_batch(
    learner: BatchLearner,
    probs: np.ndarray,
    n_users: int,
    steps: int,
    rng: np.random.Generator,
) -> BatchLog:
    """Train ``n_users`` independent chains for ``steps`` steps.

    ``probs`` is one listener's P[s, a, k] of shape (n, n, 3), shared by every user,
    or a per-user stack of shape (U, n, n, 3).
    """
    n = probs.shape[-2]
    per_user = probs.ndim == 4
    idx = np.arange(n_users)
    bs = learner.init_batch(n_users, n)
    s = rng.integers(n, size=n_users)
    states = np.empty((steps, n_users), dtype=np.int8)
    actions = np.empty((steps, n_users), dtype=np.int8)
    rewards = np.empty((steps, n_users), dtype=np.float32)
    for t in range(steps):
        a = learner.select_batch(bs, s, rng)
        p = probs[idx, s, a] if per_user else probs[s, a]
        r = sample_rewards_batch(p, rng)
        learner.update_batch(bs, s, a, r, a)
        states[t], actions[t], rewards[t] = s, a, r
        s = a
    return BatchLog(states, actions, rewards, bs)
