"""Off-policy evaluation from logged recommendations: what a fixed policy would have
earned per suggestion, estimated from what the learner actually suggested.

Each logged suggestion carries the probability with which the learner chose it (its
propensity μ(a | s)). Reweighting each reward by w = π(a | s) / μ(a | s) turns the log
into a sample of the target policy π; the self-normalised estimate
V̂ = Σ w·r / Σ w (SNIPS) trades a small bias for a much smaller variance than plain
importance sampling, and its bootstrap percentile interval says how sure it is. The
effective sample size (Σ w)² / Σ w² says how many logged suggestions the estimate is
really worth: few when π picks what the learner rarely did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 1000
MIN_PROPENSITY = 1e-3
"""Propensities below this are clipped (a Monte-Carlo estimate can come out as 0)."""


@dataclass(frozen=True)
class Estimate:
    """SNIPS value per suggestion, its bootstrap 95 % interval and the effective size."""

    value: float
    low: float
    high: float
    effective_sample_size: float
    n: int


def snips(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    bootstrap: int = BOOTSTRAP,
) -> Estimate:
    """The estimate from logged ``rewards``, their ``propensities`` μ(a_i | s_i) and the
    target policy's probabilities ``target`` π(a_i | s_i) of the same logged actions."""
    r = np.asarray(rewards, dtype=np.float64)
    mu = np.clip(np.asarray(propensities, dtype=np.float64), MIN_PROPENSITY, 1.0)
    w = np.asarray(target, dtype=np.float64) / mu
    n = r.size
    if n == 0 or not np.any(w > 0):
        return Estimate(float("nan"), float("nan"), float("nan"), 0.0, n)
    value = float((w * r).sum() / w.sum())
    ess = float(w.sum() ** 2 / (w**2).sum())
    idx = rng.integers(n, size=(bootstrap, n))
    ws, rs = w[idx], r[idx]
    totals = ws.sum(axis=1)
    ok = totals > 0
    boot = (ws * rs).sum(axis=1)[ok] / totals[ok]
    low, high = np.percentile(boot, [2.5, 97.5]) if boot.size else (value, value)
    return Estimate(value, float(low), float(high), ess, n)
