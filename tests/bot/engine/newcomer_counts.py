"""A newcomer's own reactions per genre, as the community tests write them."""

from __future__ import annotations

import numpy as np

LOW, HIGH = -5.0, 10.0  # the dislike and like rewards


def own(counts: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A newcomer's per-genre reactions and reward sums from {genre: (likes, dislikes)}."""
    n, total = np.zeros(5), np.zeros(5)
    for g, (yes, no) in counts.items():
        n[g] = yes + no
        total[g] = yes * HIGH + no * LOW
    return n, total
