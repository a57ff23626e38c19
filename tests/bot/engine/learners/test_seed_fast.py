"""The seed learner's fused loops' own parts (``bot.engine.learners.seed_fast``)."""

from __future__ import annotations

import numpy as np

from bot.engine.learners.seed_fast import greedy_columns


def test_greedy_columns_ties_and_argmax() -> None:
    rng = np.random.default_rng(9)
    users = 6000
    rows = np.zeros((5, users))
    rows[3] = -1.0  # four tied best genres, never genre 3
    rows[:, :1000] = [[0.0], [0.5], [0.1], [0.2], [0.4]]  # no tie: always genre 1
    pick = greedy_columns(rows, rng.random(users))
    assert (pick[:1000] == 1).all()
    counts = np.bincount(pick[1000:], minlength=5)
    assert counts[3] == 0
    assert counts[[0, 1, 2, 4]].min() > 0.8 * 5000 / 4


def test_greedy_columns_pick_is_the_rank_of_v() -> None:
    rows = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]]).repeat(3, axis=1)
    v = np.array([0.0, 0.5, 0.99])  # ranks 0, 1, 2 among columns 0, 2, 3
    assert greedy_columns(rows, v).tolist() == [0, 2, 3]
