"""Forgetting that adapts: ``dyna``'s change detector and what it forgets on a change.

Why not a fixed decay: decaying every count by 0.98 per step followed a change of taste
well but made the model permanently unsure, so stationary listeners paid in exploration
(one measured listener went from regret 255 to 585). Here evidence is kept in full until
the data say the taste changed, then most of it is dropped at once.

**Detection (CUSUM).** For each cell (current genre s, suggestion a) a one-sided CUSUM
of the log-likelihood ratio "the cell's reward fell by ``drop``" against "it is what the
model says": with the reward rescaled to x ∈ [0, 1], the model's predictive probability
is the Beta-binomial B(α + x, β + 1 − x) / B(α, β) with Beta(α, β) = Beta(1 + liked,
1 + rest) of the cell's own counts: a change is the cell's future departing from its own
past. A weakly known cell is hard to surprise, and a taste of one row that the pooled
model has not yet learned is not mistaken for a change. The alternative is
Bernoulli-like with mean m − ``drop``, m = α / (α + β). The statistic drifts down while
the model is right and up after a fall; crossing ``threshold`` is a change.

**Forgetting on a change.** The listener's working counts (``LearnerState.memory``,
planes 0 and 1; the true history in ``visits``/``reward_sum`` is never touched) are
multiplied by ``keep_changed`` in the changed genre's column and by ``keep_others``
elsewhere, and every CUSUM restarts. The prior is untouched, so the model falls back
towards it and the sharpened Thompson draw explores again.

Measured (2026-12-01, 50 seeds, dyna's defaults otherwise): pop_lover → jazz_enthusiast
at step 500, regret over the second half 1,282 → ~225; built-in profiles' regret@1000
89 → ~95; random stationary profiles unchanged within noise.

Why not also fade the genres not being played (so a stale belief is retried without an
alarm): measured on 2026-12-01 (``learning_quality.py``'s cases, 200 seeds, profile seeds
2026 / 7; branch ``drift4-stale-decay``), fading every other genre's counts by e^(−1/τ) per
reaction bought little drift and cost every stationary listener exploration. τ = 700, the
fastest fade within the bound on regret@1000 (0.2× seed's), moved drift regret after the
change from 306 / 300 to 280 / 294 and generated stuck runs from 2.0 / 2.6 % to 1.4 / 2.2 %,
at generated regret@1000 324 / 283 against 295 / 271; τ = 300 reached 270 / 282 at 362 / 340.
The current favourite, whose stale evidence keeps most unrecovered runs on it, is exactly
what such a fade spares.

Why an alarm keeps 5 % and 10 %, not nothing: measured on 2026-12-02 (200 seeds, profile
seed 2026), keeping nothing followed change better (random drift listeners 306 -> 256,
pop_lover -> jazz_enthusiast 216 -> 166) but every false alarm then wiped a stationary
listener: built-ins' regret@1000 101 -> 169 (stuck runs 0.2 % -> 3.6 %), generated 295 ->
339 (6.6 %). Thresholds 3.5, 4 and 6 with nothing kept gave 274, 267 and 287. Forgetting
hard would need a way back from a false alarm (the old counts kept until the data since the
alarm choose between them), which is another memory plane: a storage format change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VISITS, REWARD_SUM, DRIFT = 0, 1, 2
"""Planes of ``LearnerState.memory`` as ``dyna`` uses them."""


@dataclass(frozen=True, slots=True)
class ChangeConfig:
    """Settings of the change detector and of what a detected change forgets."""

    drop: float = 0.3  # the fall in liked-share (on [0, 1]) the CUSUM looks for
    threshold: float = 5.0  # log-likelihood ratio that declares a change (inf: never)
    keep_changed: float = 0.05  # share of the changed genre's evidence kept
    keep_others: float = 0.1  # share kept of every other genre's evidence
    floor: float = 0.02  # the alternative's mean never goes below this

    def __post_init__(self) -> None:
        if not 0.0 < self.drop < 1.0:
            raise ValueError(f"drop must be in (0, 1), got {self.drop!r}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold!r}")
        for name in ("keep_changed", "keep_others", "floor"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from bot.engine.learners.dyna.posterior import lgamma  # the model's vectorised log Γ

    return lgamma(a) + lgamma(b) - lgamma(a + b)


def evidence_of_fall(
    al: np.ndarray, be: np.ndarray, x: np.ndarray, cfg: ChangeConfig
) -> np.ndarray:
    """log p(x | fallen) − log p(x | model), per listener (arrays of one shape), for a
    cell whose own reward posterior is Beta(al, be)."""
    m = al / (al + be)
    log_model = _log_beta(al + x, be + 1.0 - x) - _log_beta(al, be)
    m1 = np.maximum(m - cfg.drop, cfg.floor)
    log_fallen = x * np.log(m1) + (1.0 - x) * np.log1p(-m1)
    return log_fallen - log_model


def evidence_of_fall_scalar(al: float, be: float, x: float, cfg: ChangeConfig) -> float:
    """:func:`evidence_of_fall` for one listener, on floats.

    For a 👍 (x = 1) or a 👎 (x = 0) the Beta-binomial predictive is the Beta mean,
    B(α + 1, β) / B(α, β) = α / (α + β), so the six log Γ become one log (the same value
    up to rounding); the bot's other rewards take the general form.
    """
    t = al + be
    m1 = max(al / t - cfg.drop, cfg.floor)
    if x == 1.0:
        return math.log(m1) - math.log(al / t)
    if x == 0.0:
        return math.log1p(-m1) - math.log(be / t)
    lg = math.lgamma
    log_model = lg(al + x) - lg(al) + lg(be + 1.0 - x) - lg(be) - math.log(t)
    return x * math.log(m1) + (1.0 - x) * math.log1p(-m1) - log_model


def fresh_memory(visits: np.ndarray, reward_sum: np.ndarray) -> np.ndarray:
    """Working memory for states that have none yet: their history, no drift.

    ``visits`` is (n, n) for one listener or (U, n, n); the result is (3, n, n) or
    (U, 3, n, n).
    """
    out = np.zeros((*visits.shape[:-2], 3, *visits.shape[-2:]))
    out[..., VISITS, :, :] = visits
    out[..., REWARD_SUM, :, :] = reward_sum
    return out


def forget(memory: np.ndarray, a: np.ndarray, cfg: ChangeConfig) -> None:
    """Apply a detected change in genre ``a[k]`` to listener k of (k, 3, n, n) ``memory``."""
    k = np.arange(memory.shape[0])
    keep = np.full((memory.shape[0], memory.shape[-1]), cfg.keep_others)
    keep[k, a] = cfg.keep_changed
    memory[:, :2] *= keep[:, np.newaxis, np.newaxis, :]
    memory[:, DRIFT] = 0.0


def observe_batch(
    memory: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    r: np.ndarray,
    low: float,
    high: float,
    cfg: ChangeConfig,
) -> np.ndarray:
    """One reaction per listener into (U, 3, n, n) ``memory``: test for a change first
    (and forget if there was one), then count the reaction. Returns the alarm mask.

    """
    idx = np.arange(memory.shape[0])
    span = high - low
    x = np.clip((r - low) / span, 0.0, 1.0)
    v = memory[idx, VISITS, s, a]
    succ = np.clip((memory[idx, REWARD_SUM, s, a] - v * low) / span, 0.0, v)
    evidence = evidence_of_fall(1.0 + succ, 1.0 + v - succ, x, cfg)
    drift = np.maximum(0.0, memory[idx, DRIFT, s, a] + evidence)
    alarm = drift > cfg.threshold
    memory[idx, DRIFT, s, a] = drift
    if alarm.any():
        rows = np.flatnonzero(alarm)
        part = memory[rows]
        forget(part, a[rows], cfg)
        memory[rows] = part
    memory[idx, VISITS, s, a] += 1.0
    memory[idx, REWARD_SUM, s, a] += r
    return alarm
