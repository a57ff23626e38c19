"""Planning on the learned model: its exact fixed point Q = r̂ + γ·max Q(a, ·).

The next genre is the suggested one, so given r̂ the model is a deterministic MDP on
the genres. :func:`solve` runs on arrays (one table or a users axis);
:func:`solve_list` is the same policy iteration for one table on plain floats.
"""

from __future__ import annotations

from operator import add
from typing import cast

import numpy as np

SOLVE_TOL = 1e-12
"""A policy switches only for a gain above this (no cycling on ties)."""
SOLVE_MAX_ITER = 50
"""Policy-iteration rounds before falling back to value iteration."""


def backup(q: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """One exact backup r(s, a) + γ·max Q(a, ·) (how a sampled reward becomes a choice)."""
    return r + gamma * q.max(axis=-1)[..., np.newaxis, :]


def solve(q: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """The model's fixed point Q = r + γ·max Q(a, ·), exactly; ``q`` (..., n, n) warm-starts.

    A policy π is a map s → π(s) and its values solve (I − γ P_π) V = r_π. Policy
    iteration from the greedy policy of ``q`` (batched solves) usually stops after one
    or two rounds; value iteration to convergence is the fallback should it not settle.
    """
    n = r.shape[-1]
    eye = np.eye(n)
    pi = q.argmax(axis=-1)
    r_pi_idx = pi[..., np.newaxis]
    for _ in range(SOLVE_MAX_ITER):
        r_pi = np.take_along_axis(r, r_pi_idx, axis=-1)  # (..., n, 1)
        system = eye - gamma * eye[pi]  # row s of P_π is the unit vector of π(s)
        v = np.linalg.solve(system, r_pi)[..., 0]
        qn = r + gamma * v[..., np.newaxis, :]
        best = qn.argmax(axis=-1)
        gain = np.take_along_axis(qn, best[..., np.newaxis], -1) - np.take_along_axis(
            qn, r_pi_idx, -1
        )
        switch = gain[..., 0] > SOLVE_TOL * (1.0 + np.abs(v))
        if not switch.any():
            return qn
        pi = np.where(switch, best, pi)
        r_pi_idx = pi[..., np.newaxis]
    return value_iterate(qn, r, gamma)


def value_iterate(q: np.ndarray, r: np.ndarray, gamma: float, tol: float = 1e-13) -> np.ndarray:
    """Backups until the largest change is below ``tol`` (the fallback of :func:`solve`)."""
    for _ in range(100_000):
        new = backup(q, r, gamma)
        if np.max(np.abs(new - q), initial=0.0) < tol:
            return new
        q = new
    return q


def evaluate(pi: list[int], r_pi: list[float], gamma: float) -> list[float]:
    """V of the policy s → π(s): V(s) = r_π(s) + γ·V(π(s)), on its functional graph.

    Following s → π(s) → … ends on a cycle c_0 … c_{L−1}; there
    V(c_0) = Σ_k γ^k r_π(c_k) / (1 − γ^L), and the rest follows backwards.
    """
    n = len(pi)
    v: list[float | None] = [None] * n
    for start in range(n):
        if v[start] is not None:
            continue
        path: list[int] = []
        on_path: dict[int, int] = {}
        x = start
        while v[x] is None and x not in on_path:
            on_path[x] = len(path)
            path.append(x)
            x = pi[x]
        if v[x] is None:  # closed a new cycle: path[on_path[x]:]
            cycle = path[on_path[x] :]
            del path[on_path[x] :]
            total, g = 0.0, 1.0
            for c in cycle:
                total += g * r_pi[c]
                g *= gamma
            value = v[x] = total / (1.0 - g)
            for c in reversed(cycle[1:]):
                value = v[c] = r_pi[c] + gamma * value
        value = cast(float, v[x])  # solved: on a cycle closed above, or an earlier path
        for c in reversed(path):
            value = v[c] = r_pi[c] + gamma * value
    return v  # type: ignore[return-value]


def solve_list(q: list[list[float]], r_hat: list[float], gamma: float) -> list[float]:
    """:func:`solve` for one n×n list table: row-major r̂ and result, warm-started by q."""
    n = len(q)
    rows = [r_hat[i : i + n] for i in range(0, n * n, n)]
    pi = [row.index(max(row)) for row in q]
    for _ in range(SOLVE_MAX_ITER):
        v = evaluate(pi, [row[p] for row, p in zip(rows, pi, strict=True)], gamma)
        gv = [gamma * x for x in v]
        stable = True
        for s, row in enumerate(rows):
            qs = list(map(add, row, gv))
            best = max(qs)
            if best - qs[pi[s]] > SOLVE_TOL * (1.0 + abs(v[s])):
                pi[s] = qs.index(best)
                stable = False
        if stable:
            return list(map(add, r_hat, gv * n))
    r = np.reshape(r_hat, (n, n))
    return value_iterate(r + gamma * np.asarray(v), r, gamma).ravel().tolist()
