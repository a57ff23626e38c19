"""Planning on the learned model: its exact fixed point Q = r̂ + γ·max Q(a, ·).

The next genre is the suggested one, so given r̂ the model is a deterministic MDP on
the genres. :func:`solve` runs on arrays (one table or a users axis);
:func:`solve_list` is the same policy iteration for one table on plain floats.
"""

from __future__ import annotations

import functools
import math
from operator import add, getitem, sub
from typing import NamedTuple

import numpy as np

SOLVE_TOL = 1e-12
"""A policy switches only for a gain above this (no cycling on ties)."""
SOLVE_MAX_ITER = 50
"""Policy-iteration rounds before falling back to value iteration."""
LEAD_TOL = 1e-9
"""The bound on the policy's lead (×(1 + max |V|)) below which :func:`replan` solves again."""
LEAD_ROUNDING = 1e-12
"""What each bounded step takes off the lead for rounding (×(1 + max |V|))."""


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


@functools.lru_cache(maxsize=4096)
def evaluation_order(pi: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """The order in which :func:`evaluate` solves V for the policy s → π(s).

    Following s → π(s) → … ends on a cycle; the result is the cycles (each from the
    node where the walk closed it) and then the other nodes, each after its successor.
    A listener's policy rarely changes, so the walk is done once per policy.
    """
    n = len(pi)
    done = [False] * n
    cycles: list[tuple[int, ...]] = []
    tail: list[int] = []
    for start in range(n):
        path: list[int] = []
        on_path: dict[int, int] = {}
        x = start
        while not done[x] and x not in on_path:
            on_path[x] = len(path)
            path.append(x)
            x = pi[x]
        if not done[x]:  # closed a new cycle: path[on_path[x]:]
            cycles.append(tuple(path[on_path[x] :]))
            del path[on_path[x] :]
            for c in cycles[-1]:
                done[c] = True
        for c in reversed(path):
            tail.append(c)
            done[c] = True
    return tuple(cycles), tuple(tail)


def evaluate(pi: list[int], r_pi: list[float], gamma: float) -> list[float]:
    """V of the policy s → π(s): V(s) = r_π(s) + γ·V(π(s)), on its functional graph.

    On a cycle c_0 … c_{L−1}, V(c_0) = Σ_k γ^k r_π(c_k) / (1 − γ^L), and the rest
    follows backwards (:func:`evaluation_order`).
    """
    cycles, tail = evaluation_order(tuple(pi))
    v = [0.0] * len(pi)
    for cycle in cycles:
        total, g = 0.0, 1.0
        for c in cycle:
            total += g * r_pi[c]
            g *= gamma
        value = v[cycle[0]] = total / (1.0 - g)
        for c in reversed(cycle[1:]):
            value = v[c] = r_pi[c] + gamma * value
    for x in tail:
        v[x] = r_pi[x] + gamma * v[pi[x]]
    return v


class Plan(NamedTuple):
    """The solved table of one listener on lists: policy, values and Q = r̂ + γ·V.

    Q itself is not kept: every step needs only one row of it (:func:`q_row`), and
    building all n rows was a fifth of a step.
    """

    pi: list[int]  # greedy policy, s → π(s)
    v: list[float]  # V of π
    gv: list[float]  # γ·V
    best: list[float]  # max Q(s, ·)
    g_max: list[float]  # γ·max Q(s, ·): what a choice that moves to s adds
    q: list[list[float]] | None = None  # a table given as is (not planned); None: r̂ + γ·V
    # A lower bound on min over s of Q(s, π(s)) − max over b ≠ π(s) of Q(s, b): how far
    # the policy's choice leads the rest of its row, in the closest row (None: unknown).
    lead: float | None = None


def q_row(plan: Plan, rows: list[list[float]], s: int) -> list[float]:
    """Q(s, ·) of ``plan`` on the r̂ ``rows`` it was planned on."""
    if plan.q is not None:
        return plan.q[s]
    return list(map(add, rows[s], plan.gv))


def q_table(plan: Plan, rows: list[list[float]]) -> list[list[float]]:
    """Every row of Q."""
    return [q_row(plan, rows, s) for s in range(len(rows))]


def improve(rows: list[list[float]], pi: list[int], gamma: float) -> Plan:
    """Policy iteration on the n×n r̂ ``rows`` from the policy ``pi`` (changed in place).

    A row switches only for a gain above ``SOLVE_TOL`` (no cycling on ties); should it
    not settle within ``SOLVE_MAX_ITER`` rounds, value iteration finishes the job.
    """
    times = float(gamma).__mul__  # γ·x, one C call per list
    for _ in range(SOLVE_MAX_ITER):
        r_pi = list(map(getitem, rows, pi))
        v = evaluate(pi, r_pi, gamma)
        gv = list(map(times, v))
        best = [max(map(add, row, gv)) for row in rows]
        # Usually the policy's value is exactly each row's best: nothing to switch.
        on_pi = list(map(add, r_pi, map(gv.__getitem__, pi)))  # Q(s, π(s))
        if best != on_pi and not _settled(rows, gv, best, pi, v):
            continue
        lead = min([_lead(row, gv, p) for row, p in zip(rows, pi, strict=True)])
        return Plan(pi, v, gv, best, list(map(times, best)), None, lead)
    r = np.array(rows)
    qa = value_iterate(r + gamma * np.asarray(v), r, gamma)
    v = qa.max(axis=1).tolist()
    pi[:] = qa.argmax(axis=1).tolist()
    gv = [gamma * x for x in v]
    best = [max(map(add, row, gv)) for row in rows]
    return Plan(pi, v, gv, best, [gamma * b for b in best])


def _lead(row: list[float], gv: list[float], p: int) -> float:
    """Q(s, p) − max over b ≠ p of Q(s, b) for the row r̂(s, ·) (inf for one genre)."""
    qs = list(map(add, row, gv))
    top = qs[p]
    qs[p] = -math.inf
    return top - max(qs)


def _settled(
    rows: list[list[float]], gv: list[float], best: list[float], pi: list[int], v: list[float]
) -> bool:
    """True if no row's best gains more than the tolerance on π; else switch those rows."""
    stable = True
    for s, (row, b) in enumerate(zip(rows, best, strict=True)):
        qs = list(map(add, row, gv))
        if b - qs[pi[s]] > SOLVE_TOL * (1.0 + abs(v[s])):
            pi[s] = qs.index(b)
            stable = False
    return stable


def replan(plan: Plan, rows: list[list[float]], a: int, gamma: float, moved: float) -> Plan:
    """``plan`` after column ``a`` of ``rows`` changed, by at most ``moved`` per cell:
    the same result as :func:`improve`, mostly without comparing every Q.

    The policy's lead in its closest row (``plan.lead``) falls by at most twice the
    largest change of any Q(s, b): ``moved`` plus the change of γ·V. While the bound
    stays above ``LEAD_TOL``, π(s) is still each row's strict best, so the policy
    stands and max Q(s, ·) is Q(s, π(s)): exactly the values :func:`improve` would
    compute. When no state's policy moves to a, V and Q(s, π(s)) do not change at all.
    Otherwise (or with no bound) the table is solved again.
    """
    pi, lead = plan.pi, plan.lead
    if lead is None or plan.q is not None:
        return improve(rows, pi, gamma)
    if a not in pi:  # r_π and so V are unchanged; only Q(·, a) moved
        scale = 1.0 + max(map(abs, plan.v))
        lead -= moved + LEAD_ROUNDING * scale
        if lead > LEAD_TOL * scale:
            return plan._replace(lead=lead)
        return improve(rows, pi, gamma)
    r_pi = list(map(getitem, rows, pi))
    v = evaluate(pi, r_pi, gamma)
    times = float(gamma).__mul__
    gv = list(map(times, v))
    scale = 1.0 + max(map(abs, v))
    lead -= 2.0 * (moved + max(map(abs, map(sub, gv, plan.gv)))) + LEAD_ROUNDING * scale
    if lead > LEAD_TOL * scale:
        best = list(map(add, r_pi, map(gv.__getitem__, pi)))  # Q(s, π(s)), each row's max
        return Plan(pi, v, gv, best, list(map(times, best)), None, lead)
    return improve(rows, pi, gamma)


def solve_list(q: list[list[float]], r_hat: list[float], gamma: float) -> list[float]:
    """:func:`solve` for one n×n list table: row-major r̂ and result, warm-started by q."""
    n = len(q)
    rows = [r_hat[i : i + n] for i in range(0, n * n, n)]
    plan = improve(rows, [row.index(max(row)) for row in q], gamma)
    return [x for qs in q_table(plan, rows) for x in qs]
