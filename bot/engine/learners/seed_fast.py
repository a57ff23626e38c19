"""The seed learner's fused loops: the same process as the generic trainers, faster.

One chain runs in plain Python (:func:`seed_chain`): the Q-table as nested lists, the
random numbers drawn from the Generator in blocks. Per-step numpy scalar calls cost
microseconds each; plain floats cost nanoseconds, which is the whole speed-up. Many
users run with few numpy calls per step (:func:`seed_batch`). Both use random
tie-breaking, the same ε schedule and next state = action; they consume the Generator
differently from the generic loops, so they agree in distribution, not step by step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bot.engine.listeners import REWARDS
from bot.engine.logs import BatchLog, TrainingLog, batch_log, chain_log
from bot.engine.qlearning import BatchState, LearnerState

if TYPE_CHECKING:
    from bot.engine.learners.base import Progress
    from bot.engine.learners.seed import SeedParams

BLOCK = 8192
"""Steps per block of pre-drawn random numbers in the chain (and per progress call)."""


def seed_chain(
    params: SeedParams,
    st: LearnerState,
    probs: np.ndarray,
    s: int,
    episodes: int,
    rng: np.random.Generator,
    genres: tuple[str, ...],
    progress: Progress,
) -> TrainingLog:
    """The seed learner's chain in plain Python.

    Per step, three uniforms: ``u`` decides explore vs exploit; ``v`` picks the random
    genre when exploring, or the winner among tied best genres when exploiting (only
    one of the two happens, so one draw serves both); ``w`` draws the reward.
    ``visits`` and ``reward_sum`` are filled from the logs after the loop.
    """
    n = probs.shape[0]
    q = st.q.tolist()
    cut0 = probs[:, :, 0].tolist()
    cut1 = (probs[:, :, 0] + probs[:, :, 1]).tolist()
    r_skip, r_brief, r_enjoy = (float(x) for x in REWARDS)
    alpha, gamma = float(params.alpha), float(params.gamma)
    decay, floor = float(params.epsilon_decay), float(params.epsilon_min)
    eps = float(st.epsilon)
    start = s
    actions: list[int] = []
    rewards: list[float] = []
    epsilons: list[float] = []
    done = 0
    while done < episodes:
        size = min(BLOCK, episodes - done)
        us, vs, ws = rng.random((3, size)).tolist()
        for u, v, w in zip(us, vs, ws, strict=True):
            row = q[s]
            if u < eps:
                a = int(v * n)
            else:
                best = max(row)
                if row.count(best) == 1:
                    a = row.index(best)
                else:
                    ties = [j for j in range(n) if row[j] == best]
                    a = ties[int(v * len(ties))]
            c0 = cut0[s][a]
            r = r_skip if w < c0 else (r_brief if w < cut1[s][a] else r_enjoy)
            row[a] += alpha * (r + gamma * max(q[a]) - row[a])
            actions.append(a)
            rewards.append(r)
            epsilons.append(eps)
            eps = eps * decay
            if eps < floor:
                eps = floor
            s = a
        done += size
        progress(done)
    if episodes == 0:
        progress(0)
    st.q[...] = np.array(q, dtype=np.float64).reshape(n, n)
    st.epsilon = eps
    return chain_log(st, start, actions, rewards, epsilons, genres)


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


def seed_batch(
    params: SeedParams,
    bs: BatchState,
    probs: np.ndarray,
    s: np.ndarray,
    steps: int,
    rng: np.random.Generator,
) -> BatchLog:
    """The seed learner's process for every user at once, with few numpy calls per step.

    The Q-table is worked on transposed, ``qt[a, s * U + u]``, so a gathered row set
    has the users axis contiguous. One scalar ε serves everyone (every user starts at
    ε₀ and decays in lockstep). Per user and step three uniforms: ``u`` (explore?),
    ``v`` (the random genre when exploring, else the pick among tied best genres; only
    one of the two happens) and ``w`` (the reward).
    """
    p = params
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
    bs.epsilon[...] = eps
    return batch_log(bs, start, actions, rewards)
