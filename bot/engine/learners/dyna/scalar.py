"""The reward model for one listener in plain Python (the bot's and ``simulate``'s path).

The same model as :mod:`.posterior`, for one (n, n) table. On 5×5 tables numpy's
per-call overhead (about a microsecond) dominates; plain floats, ``math.lgamma`` and
lists cost tens of nanoseconds. An update at (s, a) changes only column a's counts, and
a column's posterior depends on nothing else, so only that column is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from bot.engine.learners.dyna import planning
from bot.engine.learners.dyna.forgetting import (
    DRIFT,
    REWARD_SUM,
    VISITS,
    evidence_of_fall_scalar,
    forget,
)
from bot.engine.learners.dyna.params import DynaParams, RewardScale
from bot.engine.learners.dyna.posterior import Posterior
from bot.engine.listeners import REWARDS
from bot.engine.logs import TrainingLog, chain_log
from bot.engine.qlearning import MEMORY_PLANES, LearnerState

if TYPE_CHECKING:
    from bot.engine.learners.base import Progress


class Consts(NamedTuple):
    """Per-settings constants of the scalar path."""

    low: float
    span: float
    a0: float
    b0: float
    k: float
    lg_k: float
    logit: float
    prior_weight: float  # own_weight of a cell without data: the prior
    sharpness: float
    early: float
    early_reactions: float


def consts(params: DynaParams, scale: RewardScale) -> Consts:
    p = params.own_taste_prior
    logit = math.log(p / (1.0 - p))
    return Consts(
        low=scale.low,
        span=scale.span,
        a0=params.prior_strength * params.prior_mean,
        b0=params.prior_strength * (1.0 - params.prior_mean),
        k=params.slab_strength,
        lg_k=math.lgamma(params.slab_strength),
        logit=logit,
        prior_weight=1.0 / (1.0 + math.exp(-logit)),
        sharpness=params.sharpness,
        early=params.early_sharpness - 1.0,
        early_reactions=params.early_reactions,
    )


Evidence = tuple[float, float, float, float]
"""Per seen cell, what stays while only its own count moves: k·m and k·(1 − m) of the
pool without it, the log-Beta terms of that pool and of the own-taste prior, and
log Γ(k + visits)."""


Cell = tuple[float, float, float]
"""A cell's posterior: the own-taste weight and the own taste's Beta (a, b)."""


class Column:
    """What one genre's column (suggestion a, every current genre s) keeps between
    updates; its cells' posteriors and mean rewards are written into row-major lists.

    Mutable: a :class:`Chain` owns its columns and :func:`update_column` refreshes one
    in place after a reaction (building new lists every step cost more than the maths).
    """

    __slots__ = ("parts", "pool_a", "pool_b", "succ")

    def __init__(
        self,
        pool_a: float,
        pool_b: float,
        succ: list[float],
        parts: list[Evidence | None],
    ) -> None:
        self.pool_a = pool_a  # Beta of genre a's pooled reward
        self.pool_b = pool_b
        self.succ = succ  # per s: the cell's rescaled reward total (its Beta successes)
        self.parts = parts  # per s, for the next update (None: no data)


def successes(v: float, r: float, low: float, span: float) -> float:
    """A cell's total reward rescaled to [0, 1] per reaction: its fractional successes."""
    if not v:
        return 0.0
    x = (r - v * low) / span
    return 0.0 if x < 0.0 else (v + 0.0 if x > v else x)


def column(
    vis: Sequence[float],
    rsum: Sequence[float],
    c: Consts,
    rows: list[list[float]],
    cells: list[list[Cell]],
    a: int,
) -> Column:
    """:func:`.posterior.posterior` of one column, on floats: cell (s, a)'s posterior
    goes into ``cells[s][a]`` and its mean reward r̂(s, a) into ``rows[s][a]``."""
    n = len(vis)
    col = Column(0.0, 0.0, [0.0] * n, [None] * n)
    for i, (v, r) in enumerate(zip(vis, rsum, strict=True)):
        col.succ[i] = successes(v, r, c.low, c.span)
    _refresh(col, vis, c, rows, cells, a, -1)
    return col


def update_column(
    col: Column,
    vis: Sequence[float],
    rsum: Sequence[float],
    s: int,
    c: Consts,
    rows: list[list[float]],
    cells: list[list[Cell]],
    a: int,
) -> float:
    """``col`` (column ``a``) after one more reaction in its cell ``s`` (the counts of
    every other cell equal), in place, into ``rows`` and ``cells`` as :func:`column`.
    Cell s's pool-without-it is unchanged, so only its own terms are recomputed; the
    other cells keep their successes and log Γ(k + visits). Returns how far r̂(·, a)
    moved at most (for :func:`.planning.replan`)."""
    col.succ[s] = successes(vis[s], rsum[s], c.low, c.span)
    return _refresh(col, vis, c, rows, cells, a, s)


def _refresh(
    col: Column,
    vis: Sequence[float],
    c: Consts,
    rows: list[list[float]],
    cells: list[list[Cell]],
    a: int,
    changed: int,
) -> float:
    lg, exp = math.lgamma, math.exp
    low, span, k = c.low, c.span, c.k
    succ, parts = col.succ, col.parts
    ssum = sum(succ)
    pa = col.pool_a = c.a0 + ssum
    pb = col.pool_b = c.b0 + (sum(vis) - ssum)
    pm = pa / (pa + pb)
    r_pool = low + span * pm
    # z = log evidence(pool) − log evidence(own) − prior log-odds, per cell (posterior())
    z0 = lg(pa) + lg(pb) - lg(pa + pb) - c.lg_k - c.logit
    unseen = (c.prior_weight, k * pm, k * (1.0 - pm))  # no data: both models are the pool
    moved = 0.0
    for i, v in enumerate(vis):
        row = rows[i]
        if not v:
            cells[i][a] = unseen
            d = r_pool - row[a]
            row[a] = r_pool
            parts[i] = None
            if d > moved or -d > moved:
                moved = abs(d)
            continue
        x = succ[i]
        f = v - x
        kv = k + v
        prev = parts[i]
        if prev is None or i != changed:  # the pool without this cell's data moved
            ea = pa - x
            eb = pb - f
            t = ea + eb
            m = ea / t
            km = k * m
            kn = k * (1.0 - m)
            e = lg(t) - lg(ea) - lg(eb) + lg(km) + lg(kn)
            lg_kv = lg(kv) if prev is None else prev[3]  # the cell's own count moved or not
        else:
            km, kn, e, _ = prev
            lg_kv = lg(kv)
        oa = km + x
        ob = kn + f
        z = z0 + e - lg(oa) - lg(ob) + lg_kv
        w = 1.0 / (1.0 + exp(50.0 if z > 50.0 else (-50.0 if z < -50.0 else z)))
        cells[i][a] = (w, oa, ob)
        r_hat = low + span * (pm + w * (oa / kv - pm))
        d = r_hat - row[a]
        row[a] = r_hat
        parts[i] = (km, kn, e, lg_kv)
        if d > moved or -d > moved:
            moved = abs(d)
    return moved


class Model(NamedTuple):
    """The posterior of one listener's counts."""

    total: float  # reactions so far
    cols: list[Column]
    rows: list[list[float]]  # posterior mean reward r̂(s, a), row by row
    cells: list[list[Cell]]  # cell (s, a)'s posterior, row by row


def model(vis: list[list[float]], rsum: list[list[float]], c: Consts) -> Model:
    """The posterior of every column of one listener's counts, given by column:
    ``vis[a][s]``, ``rsum[a][s]``."""
    n = len(vis)
    rows = [[0.0] * n for _ in range(n)]
    cells: list[list[Cell]] = [[(0.0, 0.0, 0.0)] * n for _ in range(n)]
    cols = [column(v, r, c, rows, cells, a) for a, (v, r) in enumerate(zip(vis, rsum, strict=True))]
    return Model(sum(map(sum, vis)), cols, rows, cells)


def scalar_posterior(
    visits: np.ndarray, reward_sum: np.ndarray, params: DynaParams, scale: RewardScale
) -> tuple[Posterior, np.ndarray]:
    """The scalar path's posterior of an (n, n) table and r̂, as arrays (for checking)."""
    m = model(visits.T.tolist(), reward_sum.T.tolist(), consts(params, scale))
    cells = np.array(m.cells)  # (s, a, 3)
    post = Posterior(
        pool_a=np.array([col.pool_a for col in m.cols]),
        pool_b=np.array([col.pool_b for col in m.cols]),
        own_a=cells[..., 1],
        own_b=cells[..., 2],
        own_weight=cells[..., 0],
    )
    return post, np.array(m.rows)


class Chain:
    """One listener's model and its solved table on plain lists, kept between steps.

    What :meth:`DynaLearner.select`/``update`` and the fused chain run on, so both run
    exactly the same code (and consume the Generator the same way). Built from a
    :class:`LearnerState` (:meth:`of`), it keeps what the next step needs: the working
    counts column by column, each column's posterior, the plan (policy, values, Q) and
    the Thompson draw's sharpness; :meth:`write` puts it back into the state. An update
    at (s, a) recomputes column a's posterior only and re-solves only when column a
    can change the policy (:func:`.planning.replan`).
    """

    __slots__ = (
        "c",
        "cells",
        "cfg",
        "cols",
        "counts",
        "eps",
        "gamma",
        "n",
        "plan",
        "planned",
        "rate",
        "rows",
        "total",
    )

    def __init__(
        self,
        counts: list[list[list[float]]],
        q: list[list[float]],
        epsilon: float,
        c: Consts,
        params: DynaParams,
    ) -> None:
        """``counts`` is the working memory by column: [plane][a][s] (visits, reward sum,
        change statistic); ``q`` the state's table, which holds until the first update."""
        self.c, self.cfg = c, params.change
        self.gamma, self.rate = params.gamma, params.explore_rate
        self.n = len(q)
        self.counts = counts
        self.eps = epsilon
        self._model()
        # Until the first update the state's own table holds (it need not be planned);
        # its greedy policy is where that update's solve starts.
        pi = [row.index(max(row)) for row in q]
        best = list(map(max, q))
        self.plan = planning.Plan(pi, [], [], best, [self.gamma * b for b in best], q)
        self.planned = False

    @classmethod
    def of(cls, state: LearnerState, c: Consts, params: DynaParams) -> Chain:
        if state.memory is None:
            counts = [state.visits.T.tolist(), state.reward_sum.T.tolist()]
            counts.append([[0.0] * len(counts[0]) for _ in counts[0]])
        else:
            counts = state.memory[[VISITS, REWARD_SUM, DRIFT]].transpose(0, 2, 1).tolist()
        return cls(counts, state.q.tolist(), float(state.epsilon), c, params)

    def _model(self) -> None:
        """Every column's posterior from the counts (at the start and after forgetting)."""
        self.total, self.cols, self.rows, self.cells = model(self.counts[0], self.counts[1], self.c)

    def draw(self, s: int, rng: np.random.Generator) -> int:
        """The sharpened Thompson choice from ``s``: per genre a, which model holds for
        cell (s, a) (one uniform each, drawn first), then one Beta draw of that model's
        reward; the best r̃(s, a) + γ·max Q(a, ·) wins, ties broken at random."""
        return self.choose(s, rng.random(self.n).tolist(), rng)

    def choose(self, s: int, us: list[float], rng: np.random.Generator) -> int:
        """:meth:`draw` with its n uniforms ``us`` already drawn (the fused loop draws
        them together with the previous step's reward, in the same order)."""
        c = self.c
        sharp = c.sharpness * (1.0 + c.early * math.exp(-self.total / c.early_reactions))
        low, span = c.low, c.span
        beta = rng.beta
        row = []
        for u, (w, oa, ob), col, g in zip(
            us, self.cells[s], self.cols, self.plan.g_max, strict=True
        ):
            if u < w:
                x = beta(sharp * oa, sharp * ob)
            else:
                x = beta(sharp * col.pool_a, sharp * col.pool_b)
            row.append((low + span * x) + g)
        best = max(row)
        if row.count(best) == 1:
            return row.index(best)
        ties = [j for j, x in enumerate(row) if x == best]
        return ties[int(rng.integers(len(ties)))]

    def observe(self, s: int, a: int, r: float, s_next: int) -> tuple[float, bool]:
        """One reaction: test column a's cell for a change of taste (forgetting on one),
        count it, recompute column a and re-plan. Returns the TD error of the table
        before the step and whether a was exploratory (below the best Q(s, ·))."""
        plan = self.plan
        q_sa = self.rows[s][a] + plan.gv[a] if plan.q is None else plan.q[s][a]
        explored = q_sa < plan.best[s]
        td = r + plan.g_max[s_next] - q_sa
        if self._detect(s, a, r):
            self._forget(a)
        vt, rt = self.counts[0], self.counts[1]
        vt[a][s] += 1.0
        rt[a][s] += r
        moved = update_column(self.cols[a], vt[a], rt[a], s, self.c, self.rows, self.cells, a)
        if self.planned:
            self.total += 1.0
            self.plan = planning.replan(plan, self.rows, a, self.gamma, moved)
        else:
            self.total = sum(map(sum, vt))
            self.plan = planning.improve(self.rows, plan.pi, self.gamma)
            self.planned = True
        rate = self.rate
        self.eps = (1.0 - rate) * self.eps + rate * explored
        return td, explored

    def _detect(self, s: int, a: int, r: float) -> bool:
        """Advance cell (s, a)'s change statistic (:mod:`..forgetting`); True on a change."""
        cfg, c = self.cfg, self.c
        v = self.counts[0][a][s]
        succ = min(max((self.counts[1][a][s] - v * c.low) / c.span, 0.0), v)
        x = min(max((r - c.low) / c.span, 0.0), 1.0)
        dt = self.counts[2][a]
        drift = dt[s] + evidence_of_fall_scalar(1.0 + succ, 1.0 + v - succ, x, cfg)
        if drift > cfg.threshold:
            return True
        dt[s] = max(0.0, drift)
        return False

    def _forget(self, a: int) -> None:
        """A change in genre a: :func:`..forgetting.forget` on the counts, then the model
        of the rest anew (rare, so done on arrays)."""
        part = np.array(self.counts).transpose(0, 2, 1)[np.newaxis].copy()
        forget(part, np.array([a]), self.cfg)
        self.counts[:] = part[0].transpose(0, 2, 1).tolist()
        self._model()
        self.planned = False  # every column moved: solve afresh (from the current policy)

    def write(self, state: LearnerState) -> None:
        """Put the working memory, the table and ``epsilon`` into ``state`` (the history
        ``visits``/``reward_sum`` is the caller's)."""
        n = self.n
        if state.memory is None:
            state.memory = np.zeros((MEMORY_PLANES, n, n))
        state.memory[[VISITS, REWARD_SUM, DRIFT]] = np.array(self.counts).transpose(0, 2, 1)
        state.q[...] = planning.q_table(self.plan, self.rows)
        state.epsilon = self.eps


PROGRESS_EVERY = 1024
"""Steps between progress calls of :func:`run_chain` (as the generic loop)."""


def run_chain(
    chain: Chain,
    state: LearnerState,
    probs: np.ndarray,
    s: int,
    episodes: int,
    rng: np.random.Generator,
    genres: tuple[str, ...],
    progress: Progress,
) -> TrainingLog:
    """:func:`bot.engine.training.run_chain`'s generic loop for ``dyna``, fused.

    The same calls on the same :class:`Chain` as ``select`` and ``update``, and the
    reward drawn as :func:`~bot.engine.listeners.sample_reward` does, so the Generator is
    consumed exactly as in the generic loop and the tables and picks are identical; what
    it saves is the state's round trip through numpy on every step.
    """
    cut0 = probs[:, :, 0].tolist()
    cut1 = (probs[:, :, 0] + probs[:, :, 1]).tolist()
    r_skip, r_brief, r_enjoy = (float(x) for x in REWARDS)
    choose, observe, uniform = chain.choose, chain.observe, rng.random
    n = chain.n
    start = s
    actions: list[int] = []
    rewards: list[float] = []
    epsilons: list[float] = []
    explored: list[bool] = []
    us = uniform(n).tolist() if episodes else []
    for t in range(1, episodes + 1):
        a = choose(s, us, rng)
        if t < episodes:  # this step's reward and the next draw's n uniforms, in one call
            u, *us = uniform(n + 1).tolist()
        else:
            u = uniform()
        r = r_skip if u < cut0[s][a] else (r_brief if u < cut1[s][a] else r_enjoy)
        epsilons.append(chain.eps)
        explored.append(observe(s, a, r, a)[1])
        actions.append(a)
        rewards.append(r)
        s = a
        if t % PROGRESS_EVERY == 0:
            progress(t)
    progress(episodes)
    if episodes:
        chain.write(state)
    log = chain_log(state, start, actions, rewards, epsilons, genres)
    log.explored = np.array(explored, dtype=bool)
    return log
