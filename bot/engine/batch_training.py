"""Batched training: many independent listeners at once, numpy over a users axis.

Each user runs its own unbroken chain, exactly like :func:`bot.engine.training.run_chain`,
but one Python iteration advances all of them. ``compare`` and the benchmarks use it.

Any :class:`BatchLearner` goes through the generic loop (``select_batch`` then
``update_batch``). The seed learner gets a fused loop (:func:`_seed_batch`) that does
the same process with a fraction of the numpy calls: flat indices into the Q-table
instead of fancy-index chains, one scalar ε for everyone (every user starts at ε₀
and decays in lockstep), one block of uniforms per step, and ``visits`` and
``reward_sum`` rebuilt from the logs at the end instead of updated every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.learners import BatchLearner, SeedLearner
from bot.engine.listeners import REWARDS
from bot.engine.qlearning import BatchState


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
) -> BatchLog:
    """Train ``n_users`` independent chains for ``steps`` steps.

    ``probs`` is one listener's P[s, a, k] of shape (n, n, 3), shared by every user,
    or a per-user stack of shape (U, n, n, 3). ``switch`` and ``home``: see
    :func:`train_stretches`.
    """
    return train_stretches(learner, [Stretch(steps, probs, home)], n_users, rng, switch=switch)


def train_stretches(
    learner: BatchLearner,
    stretches: Sequence[Stretch],
    n_users: int,
    rng: np.random.Generator,
    *,
    switch: float = 0.0,
    state: BatchState | None = None,
) -> BatchLog:
    """Train ``n_users`` chains through taste changes: one stretch after another, the
    learner's state and the current genre carried across each change.

    ``switch`` is the probability that, before a step, a listener moves to a genre of
    their own choosing drawn from the stretch's ``home`` (0: the next state is always
    the suggestion, the seed's chain). ``state`` is the users' starting state (e.g.
    newcomers with a community prior); by default the learner's fresh one.
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
        if type(learner) is SeedLearner and switch == 0.0:
            log = _seed_batch(learner, bs, st.probs, s, st.steps, rng)
        else:
            log = _generic_batch(learner, bs, st.probs, s, st.steps, rng, switch, st.home)
        logs.append(log)
        if st.steps:
            s = log.actions[-1].astype(np.intp)
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
        p = probs[idx, s, a] if per_user else probs[s, a]
        r = sample_rewards_batch(p, rng)
        learner.update_batch(bs, s, a, r, a)
        states[t], actions[t], rewards[t] = s, a, r
        s = a
    return BatchLog(states, actions, rewards, bs)


def _reward_cuts(probs: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Flat cumulative thresholds P(−5) and P(−5)+P(+1) for the fused loop.

    Shared probs are indexed by ``s * n + a``; per-user probs are laid out like the
    transposed Q-table (action, state, user) and indexed by the same flat cell.
    """
    per_user = probs.ndim == 4
    c0, c1 = probs[..., 0], probs[..., 0] + probs[..., 1]
    if per_user:
        c0, c1 = (np.broadcast_to(c, (n_users, *c.shape[-2:])).transpose(2, 1, 0) for c in (c0, c1))
    return np.ascontiguousarray(c0).reshape(-1), np.ascontiguousarray(c1).reshape(-1), per_user


def greedy_columns(rows: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Best action per user from rows laid out (n, U), ties broken uniformly at random.

    ``v`` holds one uniform in [0, 1) per user. With ``c`` tied best columns the pick
    is the ``floor(v·c)``-th of them, found as the number of columns whose running
    count of best columns is still at most that rank. The loops run over the few
    genres, each step a contiguous operation over all users: numpy's own axis
    reductions over a length-5 axis are several times slower.
    """
    n = rows.shape[0]
    top = rows[0].copy()
    for j in range(1, n):
        np.maximum(top, rows[j], out=top)
    best = rows == top
    count = best[0].astype(np.int16)
    for j in range(1, n):
        count += best[j]
    rank = (v * count).astype(np.int16)
    seen = best[0].astype(np.int16)
    pick = (seen <= rank).astype(np.intp)
    for j in range(1, n - 1):
        seen += best[j]
        pick += seen <= rank
    return pick


def _patch_same_row(nxt: np.ndarray, s: np.ndarray, a: np.ndarray, q_sa: np.ndarray) -> None:
    """Keep the gathered next rows current: a user who stayed put updated one of them.

    Reusing the rows gathered for the TD target as the next step's rows saves a
    gather per step; only users with ``s == a`` need their updated cell copied in.
    """
    same = np.flatnonzero(s == a)
    if same.size:
        nxt[a[same], same] = q_sa[same]


def _seed_batch(
    learner: SeedLearner,
    bs: BatchState,
    probs: np.ndarray,
    s: np.ndarray,
    steps: int,
    rng: np.random.Generator,
) -> BatchLog:
    """The seed learner's process for every user at once, with few numpy calls per step.

    The Q-table is worked on transposed, ``qt[a, s * U + u]``, so a gathered row set
    has the users axis contiguous. Per user and step three uniforms: ``u`` (explore?),
    ``v`` (the random genre when exploring, else the pick among tied best genres; only
    one of the two happens) and ``w`` (the reward).
    """
    p = learner.params
    n_users, n = bs.q.shape[0], bs.q.shape[1]
    qt = np.ascontiguousarray(bs.q.transpose(2, 1, 0)).reshape(n, n * n_users)
    qt_flat = qt.reshape(-1)
    cut0, cut1, per_user = _reward_cuts(probs, n_users)
    users = np.arange(n_users, dtype=np.intp)
    column = n * n_users  # flat stride of one action row of qt
    s = s.astype(np.intp)
    eps = float(bs.epsilon[0])
    alpha, gamma = float(p.alpha), float(p.gamma)
    actions = np.empty((steps, n_users), dtype=np.int8)
    rewards = np.empty((steps, n_users), dtype=np.float32)
    start = s.astype(np.int8)
    rows = qt.take(s * n_users + users, axis=1)
    for t in range(steps):
        u, v, w = rng.random((3, n_users))
        a = greedy_columns(rows, v)
        explore = u < eps
        if explore.any():
            a = np.where(explore, (v * n).astype(np.intp), a)
        cell = a * column + s * n_users + users
        key = cell if per_user else s * n + a
        r = REWARDS.take((w >= cut0.take(key)).astype(np.intp) + (w >= cut1.take(key)))
        q_sa = qt_flat.take(cell)
        nxt = qt.take(a * n_users + users, axis=1)  # next state's rows, before the update
        td = nxt.max(axis=0)
        td *= gamma
        td += r
        td -= q_sa
        td *= alpha
        q_sa += td
        qt_flat[cell] = q_sa
        _patch_same_row(nxt, s, a, q_sa)
        actions[t] = a
        rewards[t] = r
        eps = max(p.epsilon_min, eps * p.epsilon_decay)
        s, rows = a, nxt
    bs.q[...] = qt.reshape(n, n, n_users).transpose(2, 1, 0)
    return _finish_batch(bs, start, actions, rewards, eps)


def _finish_batch(
    bs: BatchState, start: np.ndarray, actions: np.ndarray, rewards: np.ndarray, eps: float
) -> BatchLog:
    """Derive the states log, ε, ``visits`` and ``reward_sum`` from the per-step logs."""
    steps, n_users = actions.shape
    n = bs.q.shape[1]
    states = np.empty_like(actions)
    if steps:
        states[0] = start
        states[1:] = actions[:-1]
    bs.epsilon[...] = eps
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
