"""Batched training: many independent listeners at once, numpy over a users axis.

Each user runs its own unbroken chain, exactly like :func:`bot.engine.training.run_chain`,
but one Python iteration advances all of them. ``compare`` and the benchmarks use it.

Any :class:`BatchLearner` goes through the generic loop (``select_batch`` then
``update_batch``). A learner may bring its own fused loop for the same process
(``train_batch_fast``, the :class:`~bot.engine.learners.base.FastBatch` protocol; the
seed learner has one), used unless ``fast=False`` or listeners switch genres themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.learners.base import BatchLearner, FastBatch
from bot.engine.listeners import REWARDS
from bot.engine.logs import BatchLog
from bot.engine.qlearning import BatchState

Steer = Callable[[BatchState, np.ndarray], np.ndarray]
"""(state, the learner's picks) → the picks played instead."""

__all__ = ["BatchLog", "Steer", "Stretch", "sample_rewards_batch", "train_batch", "train_stretches"]


def sample_rewards_batch(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One reward per row of a (U, 3) probability array."""
    u = rng.random(p.shape[0])
    k = (u >= p[:, 0]).astype(np.intp) + (u >= p[:, 0] + p[:, 1])
    return REWARDS.take(k)


@dataclass(frozen=True)
class Stretch:
    """``steps`` steps of one stationary taste: ``probs`` is P[s, a, k], shape (n, n, 3)
    shared by every user or (U, n, n, 3) per user; ``home`` is where a listener who
    names their own genre goes, shape (n,) or (U, n) (None: uniform)."""

    steps: int
    probs: np.ndarray
    home: np.ndarray | None = None


def train_batch(
    learner: BatchLearner,
    probs: np.ndarray,
    n_users: int,
    steps: int,
    rng: np.random.Generator,
    *,
    switch: float = 0.0,
    home: np.ndarray | None = None,
    fast: bool = True,
) -> BatchLog:
    """Train ``n_users`` independent chains for ``steps`` steps.

    ``probs`` is one listener's P[s, a, k] of shape (n, n, 3), shared by every user,
    or a per-user stack of shape (U, n, n, 3). ``switch`` and ``home``: see
    :func:`train_stretches`. ``fast=False`` forces the generic loop.
    """
    stretch = Stretch(steps, probs, home)
    return train_stretches(learner, [stretch], n_users, rng, switch=switch, fast=fast)


def train_stretches(
    learner: BatchLearner,
    stretches: Sequence[Stretch],
    n_users: int,
    rng: np.random.Generator,
    *,
    switch: float = 0.0,
    state: BatchState | None = None,
    fast: bool = True,
    between: Callable[[BatchState], None] | None = None,
    steer: Steer | None = None,
) -> BatchLog:
    """Train ``n_users`` chains through taste changes: one stretch after another, the
    learner's state and the current genre carried across each change.

    ``switch`` is the probability that, before a step, a listener moves to a genre of
    their own choosing drawn from the stretch's ``home`` (0: the next state is always
    the suggestion, the seed's chain). ``state`` is the users' starting state (e.g.
    newcomers with a community prior); by default the learner's fresh one. ``between``
    is called with the state after each stretch (a newcomer's prior is re-weighed there).
    ``steer`` may replace the learner's picks before they are played (a newcomer's probe,
    :mod:`bot.engine.probing`); it runs the generic loop.
    """
    steps = sum(st.steps for st in stretches)
    if n_users < 1 or steps < 0 or not stretches or min(st.steps for st in stretches) < 0:
        raise ValueError(f"need n_users >= 1 and steps >= 0, got {n_users} and {steps}")
    if not 0.0 <= switch <= 1.0:
        raise ValueError(f"switch must be in [0, 1], got {switch!r}")
    n = stretches[0].probs.shape[-2]
    bs = learner.init_batch(n_users, n) if state is None else state
    s = rng.integers(n, size=n_users)
    logs = []
    for st in stretches:
        log = None
        if fast and isinstance(learner, FastBatch) and switch == 0.0 and steer is None:
            log = learner.train_batch_fast(bs, st.probs, s, st.steps, rng)
        if log is None:
            log = _generic_batch(learner, bs, st.probs, s, st.steps, rng, switch, st.home, steer)
        logs.append(log)
        if st.steps:
            s = log.actions[-1].astype(np.intp)
        if between is not None:
            between(bs)
    if len(logs) == 1:
        return logs[0]
    return BatchLog(
        np.concatenate([lg.states for lg in logs]),
        np.concatenate([lg.actions for lg in logs]),
        np.concatenate([lg.rewards for lg in logs]),
        bs,
    )


def _own_choice(home: np.ndarray | None, n: int, u: np.ndarray) -> np.ndarray:
    """The genre each user names, from one uniform per user (inverse CDF of ``home``)."""
    if home is None:
        return np.minimum((u * n).astype(np.intp), n - 1)
    cum = np.cumsum(home, axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        return np.minimum(np.searchsorted(cum, u, side="right"), n - 1)
    return np.minimum((cum <= u[:, np.newaxis]).sum(axis=1), n - 1)


def _generic_batch(
    learner: BatchLearner,
    bs: BatchState,
    probs: np.ndarray,
    s: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    switch: float = 0.0,
    home: np.ndarray | None = None,
    steer: Steer | None = None,
) -> BatchLog:
    """Any batch learner: one ``select_batch`` and one ``update_batch`` per step, and,
    with ``switch`` > 0, a draw before each step of who names their own genre."""
    n_users = s.shape[0]
    n = probs.shape[-2]
    per_user = probs.ndim == 4
    idx = np.arange(n_users)
    states = np.empty((steps, n_users), dtype=np.int8)
    actions = np.empty((steps, n_users), dtype=np.int8)
    rewards = np.empty((steps, n_users), dtype=np.float32)
    for t in range(steps):
        if switch > 0.0:
            moved, where = rng.random((2, n_users))
            s = np.where(moved < switch, _own_choice(home, n, where), s)
        a = learner.select_batch(bs, s, rng)
        if steer is not None:
            a = steer(bs, a)
        p = probs[idx, s, a] if per_user else probs[s, a]
        r = sample_rewards_batch(p, rng)
        learner.update_batch(bs, s, a, r, a)
        states[t], actions[t], rewards[t] = s, a, r
        s = a
    return BatchLog(states, actions, rewards, bs)
