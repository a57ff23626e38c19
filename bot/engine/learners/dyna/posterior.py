"""The reward model on arrays: a pooled spike-and-slab Beta posterior from the counts.

Rewards are rescaled to [0, 1] between the dislike and like rewards and each genre gets
a Beta posterior with fractional counts, pooled over all current genres, so one 👍 for
Pop informs every row. Each cell r(s, a) is either that pooled reward or a taste of its
own (spike and slab); Beta-binomial evidence decides per cell. Every function works on
``(..., n, n)`` counts: one listener or a users axis first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bot.engine.learners.dyna.params import DynaParams, RewardScale


def success_counts(
    visits: np.ndarray, reward_sum: np.ndarray, scale: RewardScale
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional Beta counts: total reward rescaled to [0, 1] per reaction."""
    succ = np.clip((reward_sum - visits * scale.low) / scale.span, 0.0, visits)
    return succ, visits - succ


def lgamma(x: np.ndarray) -> np.ndarray:
    """log Γ(x) for x > 0: Stirling's series after shifting x up by 6 (error < 1e-10).

    Four correction terms: with three the error reached 1e-7 for small x.
    """
    shift = x * (x + 1) * (x + 2) * (x + 3) * (x + 4) * (x + 5)
    z = x + 6.0
    z2 = z * z
    tail = (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * z2)) / z2) / z2) / z
    series = (z - 0.5) * np.log(z) - z + 0.5 * np.log(2 * np.pi) + tail
    return series - np.log(shift)


@dataclass(frozen=True, slots=True)
class Posterior:
    """r(s, a) is either its genre's pooled reward (shared) or a taste of its own."""

    pool_a: np.ndarray  # (..., n) Beta of each genre's pooled reward
    pool_b: np.ndarray
    own_a: np.ndarray  # (..., n, n) Beta of r(s, a) if the cell has its own taste
    own_b: np.ndarray
    own_weight: np.ndarray  # (..., n, n) posterior probability of "own taste"


def posterior(
    visits: np.ndarray, reward_sum: np.ndarray, params: DynaParams, scale: RewardScale
) -> Posterior:
    """Spike-and-slab pooling: compare how well the pool and an own taste explain a cell.

    The evidence for each is a Beta-binomial marginal likelihood. Two 👎 where the pool
    expects 👍 quickly make the cell its own; agreeing data keep it on the pool, so
    every reaction for a genre informs every row.
    """
    succ, fail = success_counts(visits, reward_sum, scale)
    pa = params.prior_strength * params.prior_mean + succ.sum(axis=-2)
    pb = params.prior_strength * (1.0 - params.prior_mean) + fail.sum(axis=-2)
    ex_a = pa[..., np.newaxis, :] - succ  # the pool without this cell's own data
    ex_b = pb[..., np.newaxis, :] - fail
    m = ex_a / (ex_a + ex_b)
    k = params.slab_strength
    own_a, own_b = k * m + succ, k * (1.0 - m) + fail
    # log B(x, y) of the four Beta functions in two lgamma calls (12 small calls cost
    # 10×). With the cell's data the pool is the full pool: one value per genre.
    lg_pool = lgamma(np.stack((pa, pb, pa + pb)))
    lg = lgamma(
        np.stack(
            np.broadcast_arrays(
                ex_a, ex_b, ex_a + ex_b, own_a, own_b, k + visits, k * m, k * (1.0 - m)
            )
        )
    )
    log_pool = (lg_pool[0] + lg_pool[1] - lg_pool[2])[..., np.newaxis, :] - (lg[0] + lg[1] - lg[2])
    log_own = (lg[3] + lg[4] - lg[5]) - (lg[6] + lg[7] - math.lgamma(k))
    prior = np.log(params.own_taste_prior / (1.0 - params.own_taste_prior))
    weight = 1.0 / (1.0 + np.exp(np.clip(log_pool - log_own - prior, -50, 50)))
    return Posterior(pa, pb, own_a, own_b, weight)


def mean_reward(post: Posterior, scale: RewardScale) -> np.ndarray:
    """Posterior mean reward r̂(s, a) in reward units."""
    pooled = (post.pool_a / (post.pool_a + post.pool_b))[..., np.newaxis, :]
    own = post.own_a / (post.own_a + post.own_b)
    x = (1.0 - post.own_weight) * pooled + post.own_weight * own
    return scale.low + scale.span * x


def expected_reward(
    visits: np.ndarray, reward_sum: np.ndarray, params: DynaParams, scale: RewardScale
) -> np.ndarray:
    """Posterior mean reward r̂(s, a) in reward units, shape like ``visits``."""
    return mean_reward(posterior(visits, reward_sum, params, scale), scale)


def sharpness(visits: np.ndarray, params: DynaParams) -> np.ndarray:
    """Posterior concentration multiplier per listener, shape (..., 1).

    ``sharpness``, times a further ``early_sharpness`` for a new listener that fades
    with the number of reactions so far.
    """
    n = visits.sum(axis=(-2, -1))[..., np.newaxis]
    early = (params.early_sharpness - 1.0) * np.exp(-n / params.early_reactions)
    return params.sharpness * (1.0 + early)


def draw_row(
    post: Posterior,
    visits: np.ndarray,
    s: np.ndarray,
    params: DynaParams,
    scale: RewardScale,
    rng: np.random.Generator,
) -> np.ndarray:
    """One sharpened draw of r(s_u, ·) per listener u, shape (U, n): per cell which model
    holds (U·n uniforms first), then one Beta draw of that model's reward.

    Row s is all a choice from s needs. The Generator is consumed as
    :meth:`.scalar.Chain.draw` does for each listener in turn (for one listener: the
    same numbers), so the array path and the scalar path can be checked pick by pick.
    """
    idx = np.arange(s.shape[0])
    c = sharpness(visits, params)
    own = (
        rng.random(post.own_weight.shape[:-2] + post.own_weight.shape[-1:])
        < (post.own_weight[idx, s])
    )
    a = np.where(own, post.own_a[idx, s], post.pool_a)
    b = np.where(own, post.own_b[idx, s], post.pool_b)
    return scale.low + scale.span * rng.beta(c * a, c * b)


def pick_best(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of (U, n), ties broken at random as :meth:`.scalar.Chain.draw`
    does (one ``integers`` draw per tied row, none otherwise)."""
    pick = rows.argmax(axis=1)
    best = rows == rows[np.arange(rows.shape[0]), pick][:, np.newaxis]
    for u in np.flatnonzero(best.sum(axis=1) > 1):
        ties = np.flatnonzero(best[u])
        pick[u] = ties[int(rng.integers(ties.size))]
    return pick
