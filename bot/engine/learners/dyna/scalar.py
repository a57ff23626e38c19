"""The reward model for one listener in plain Python (the bot's and ``simulate``'s path).

The same model as :mod:`.posterior`, for one (n, n) table. On 5×5 tables numpy's
per-call overhead (about a microsecond) dominates; plain floats, ``math.lgamma`` and
lists cost tens of nanoseconds. An update at (s, a) changes only column a's counts, and
a column's posterior depends on nothing else, so only that column is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from bot.engine.learners.dyna.params import DynaParams, RewardScale
from bot.engine.learners.dyna.posterior import Posterior


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


class Column(NamedTuple):
    """The posterior of one genre's column (suggestion a, every current genre s)."""

    pool_a: float  # Beta of genre a's pooled reward
    pool_b: float
    cells: list[tuple[float, float, float]]  # per s: (own_weight, own_a, own_b)
    r_hat: list[float]  # per s: posterior mean reward, in reward units


def column(
    vis: Sequence[int],
    rsum: Sequence[float],
    c: Consts,
    lg: Callable[[float], float] = math.lgamma,
    exp: Callable[[float], float] = math.exp,
) -> Column:
    """:func:`.posterior.posterior` and the mean reward of one column, on floats."""
    low, span, k = c.low, c.span, c.k
    succ = []
    ssum = 0.0
    for v, r in zip(vis, rsum, strict=True):
        if v:
            x = (r - v * low) / span
            if x < 0.0:
                x = 0.0
            elif x > v:
                x = v + 0.0
            ssum += x
        else:
            x = 0.0
        succ.append(x)
    pa = c.a0 + ssum
    pb = c.b0 + (sum(vis) - ssum)
    pm = pa / (pa + pb)
    r_pool = low + span * pm
    # z = log evidence(pool) − log evidence(own) − prior log-odds, per cell (posterior())
    z0 = lg(pa) + lg(pb) - lg(pa + pb) - c.lg_k - c.logit
    unseen = (c.prior_weight, k * pm, k * (1.0 - pm))  # no data: both models are the pool
    cells = []
    r_hat = []
    for v, x in zip(vis, succ, strict=True):
        if v:
            f = v - x
            ea = pa - x  # the pool without this cell's own data
            eb = pb - f
            t = ea + eb
            m = ea / t
            km = k * m
            kn = k * (1.0 - m)
            oa = km + x
            ob = kn + f
            kv = k + v
            z = z0 - lg(ea) - lg(eb) + lg(t) - lg(oa) - lg(ob) + lg(kv) + lg(km) + lg(kn)
            w = 1.0 / (1.0 + exp(50.0 if z > 50.0 else (-50.0 if z < -50.0 else z)))
            cells.append((w, oa, ob))
            r_hat.append(low + span * (pm + w * (oa / kv - pm)))
        else:
            cells.append(unseen)
            r_hat.append(r_pool)
    return Column(pa, pb, cells, r_hat)


class Model(NamedTuple):
    """The posterior of one listener's counts (a cache entry: never mutated)."""

    visits: list[list[int]]  # the counts it was computed from
    reward_sum: list[list[float]]
    total: int  # reactions so far
    cols: list[Column]
    r_hat: list[float]  # posterior mean reward, row-major (n·n)


def model(vis: list[list[int]], rsum: list[list[float]], c: Consts) -> Model:
    """The posterior of every column of one listener's counts."""
    cols = [
        column(v, r, c)
        for v, r in zip(zip(*vis, strict=True), zip(*rsum, strict=True), strict=True)
    ]
    r_hat = [x for row in zip(*(col.r_hat for col in cols), strict=True) for x in row]
    return Model(vis, rsum, sum(map(sum, vis)), cols, r_hat)


def model_step(
    old: Model, vis: list[list[int]], rsum: list[list[float]], a: int, c: Consts
) -> Model:
    """``old`` after one reaction at column ``a`` (``vis``, ``rsum`` already counted)."""
    get = itemgetter(a)
    col = column(list(map(get, vis)), list(map(get, rsum)), c)
    cols = old.cols.copy()
    cols[a] = col
    r_hat = old.r_hat.copy()
    r_hat[a :: len(cols)] = col.r_hat
    return Model(vis, rsum, old.total + 1, cols, r_hat)


def scalar_posterior(
    visits: np.ndarray, reward_sum: np.ndarray, params: DynaParams, scale: RewardScale
) -> tuple[Posterior, np.ndarray]:
    """The scalar path's posterior of an (n, n) table and r̂, as arrays (for checking)."""
    m = model(visits.tolist(), reward_sum.tolist(), consts(params, scale))
    cells = np.array([col.cells for col in m.cols]).transpose(1, 0, 2)  # (s, a, 3)
    post = Posterior(
        pool_a=np.array([col.pool_a for col in m.cols]),
        pool_b=np.array([col.pool_b for col in m.cols]),
        own_a=cells[..., 1],
        own_b=cells[..., 2],
        own_weight=cells[..., 0],
    )
    return post, np.array(m.r_hat).reshape(len(m.cols), -1)
