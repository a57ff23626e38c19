"""Why a genre was suggested, in one short line a listener can check against memory.

The rule reads only what every learner keeps (:class:`LearnerState`: the Q-table and the
per-(genre, suggestion) counts of reactions and reward sums), so it means the same for
every learner: a suggestion is *known* when it is a best cell of its Q-row, otherwise the
learner is *exploring*. Counts of 👍 are recovered from the reward sums, exact when every
reward is a 👍 or a 👎 (pretraining's "brief listen" rewards count as a fraction, rounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.qlearning import LearnerState


@dataclass(frozen=True, slots=True)
class Explanation:
    """``text`` is the line shown to the listener; ``explored`` says it was not a best pick."""

    text: str
    explored: bool


def liked_count(visits: float, reward_sum: float, like: float, dislike: float) -> int:
    """How many of ``visits`` reactions were 👍, from their reward sum (nearest whole)."""
    if visits <= 0 or like <= dislike:
        return 0
    share = (reward_sum - visits * dislike) / (like - dislike)
    return round(min(max(share, 0.0), float(visits)))


def _times(k: int, n: int) -> str:
    return f"{k} of {n} time{'' if n == 1 else 's'}"


def explain(
    genres: Sequence[str],
    state: LearnerState,
    s: int,
    a: int,
    *,
    like: float,
    dislike: float,
) -> Explanation:
    """The reason line for suggesting ``genres[a]`` to a listener now on ``genres[s]``."""
    here, pick = genres[s], genres[a]
    row = np.asarray(state.q[s], dtype=float)
    best = np.flatnonzero(row == row.max())
    total = int(state.visits.sum())
    n_cell = int(state.visits[s, a])
    n_col = int(state.visits[:, a].sum())
    if a not in best:
        if best.size == 1:
            text = f"Something new to try: after {here} my best guess is still {genres[best[0]]}."
        else:
            text = f"Something new to try: I'm still learning what you like after {here}."
        return Explanation(text, explored=True)
    if n_cell > 0:
        k = liked_count(n_cell, float(state.reward_sum[s, a]), like, dislike)
        return Explanation(f"You liked {pick} {_times(k, n_cell)} after {here}.", False)
    if n_col > 0:
        k = liked_count(n_col, float(state.reward_sum[:, a].sum()), like, dislike)
        text = f"You liked {pick} {_times(k, n_col)} so far (not yet rated after {here})."
        return Explanation(text, False)
    if total == 0:
        return Explanation("A first guess: you haven't rated any suggestion yet.", True)
    return Explanation(f"A guess: you haven't rated {pick} yet.", True)
