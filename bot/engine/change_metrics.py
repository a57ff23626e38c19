"""Scoring runs against a listener whose taste may change: per-step loss and "was the
pick optimal" measured against the optimal policy of the phase in force, and the
figures that describe following a change (regret after it, steps to recover) and a
bad tail (stuck runs, the 95th percentile of regret).

Logs are (steps, runs) arrays, as the batched trainer writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.evaluation import lost_reward, optimal_picks
from bot.engine.listeners import SimulatedUser

RECOVER_WINDOW = 20
RECOVER_HITS = 16
"""A run has recovered from a change once 16 of its last 20 picks were optimal."""
STUCK_SHARE_BELOW = 0.5
"""A run is stuck when less than half of its last 100 picks were optimal."""


@dataclass(frozen=True)
class StepScores:
    """Per step and run: expected reward lost against π* of the phase in force, and
    whether the pick was optimal. ``changes`` are the steps where a new phase began."""

    lost: np.ndarray  # (steps, runs) float
    optimal: np.ndarray  # (steps, runs) bool
    changes: tuple[int, ...]


def score_steps(
    states: np.ndarray,
    actions: np.ndarray,
    user: SimulatedUser,
    genres: Sequence[str],
    gamma: float,
) -> StepScores:
    """Score every step against the phase of ``user`` in force at that step, with the
    definitions of :mod:`bot.engine.evaluation` (lost reward, optimal pick) per phase.
    """
    lost = np.empty(states.shape, dtype=np.float64)
    optimal = np.empty(states.shape, dtype=bool)
    segments = user.segments(states.shape[0])
    for seg in segments:
        part = slice(seg.start, seg.stop)
        expected = seg.taste.expected_rewards(genres)
        lost[part] = lost_reward(states[part], actions[part], expected, gamma)
        optimal[part] = optimal_picks(states[part], actions[part], expected, gamma)
    changes = tuple(seg.start for seg in segments[1:])
    return StepScores(lost, optimal, changes)


def steps_to_recover(optimal: np.ndarray, since: int) -> np.ndarray:
    """Per run, the steps after ``since`` until 16 of the last 20 picks were optimal
    (counting picks from ``since`` on only); ``inf`` for runs that never get there."""
    after = optimal[since:].astype(np.int32)
    runs = optimal.shape[1]
    out = np.full(runs, np.inf)
    if after.shape[0] < RECOVER_WINDOW:
        return out
    c = np.concatenate([np.zeros((1, runs), np.int32), np.cumsum(after, axis=0)])
    hits = c[RECOVER_WINDOW:] - c[:-RECOVER_WINDOW]  # window ending after k picks, k ≥ 20
    ok = hits >= RECOVER_HITS
    first = ok.argmax(axis=0)
    found = ok.any(axis=0)
    out[found] = first[found] + RECOVER_WINDOW
    return out


def change_summary(scores: StepScores) -> dict[str, float | None]:
    """``regret_after_change`` (mean over runs of the regret from the first change to
    the end), ``steps_to_recover`` (median over runs, a never-recovering run counting
    as infinitely slow, so null once half of them never recover) and
    ``never_recovered`` (the share of runs that never recover after the last change)."""
    if not scores.changes:
        return {}
    after = scores.lost[scores.changes[0] :].sum(axis=0)
    recover = steps_to_recover(scores.optimal, scores.changes[-1])
    median = float(np.median(recover))
    return {
        "regret_after_change": float(after.mean()),
        "steps_to_recover": median if np.isfinite(median) else None,
        "never_recovered": float(np.mean(~np.isfinite(recover))),
    }


def tail_summary(regret: np.ndarray, best_share_last: np.ndarray) -> dict[str, float]:
    """``stuck_share`` (runs whose last 100 picks were less than half optimal) and
    ``regret_p95`` (the 95th percentile of a run's regret)."""
    return {
        "stuck_share": float(np.mean(best_share_last < STUCK_SHARE_BELOW)),
        "regret_p95": float(np.percentile(regret, 95)),
    }
