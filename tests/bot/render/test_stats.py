"""The /stats picture (bot/render/stats.py): real PNGs at 1, 10 and 1,000 reactions."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest

from bot.render.stats import rolling_share, rolling_window, user_stats_png

G = ("Pop", "Rock", "Jazz", "Classical", "HipHop")


def test_rolling_share_is_the_mean_of_the_last_window() -> None:
    liked = [True, False, True, True, False]
    np.testing.assert_allclose(rolling_share(liked, 2), [1, 0.5, 0.5, 1, 0.5])
    np.testing.assert_allclose(rolling_share(liked, 10), [1, 0.5, 2 / 3, 0.75, 0.6])


@pytest.mark.parametrize(("n", "window"), [(1, 3), (50, 5), (1000, 100), (100_000, 200)])
def test_window_grows_with_the_history(n: int, window: int) -> None:
    assert rolling_window(n) == window


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_png_decodes(n: int) -> None:
    rng = np.random.default_rng(n)
    actions = list(rng.choice(G, size=n))
    liked = [bool(x) for x in rng.random(n) < 0.6]
    policy = {g: ("Pop" if i % 2 else None) for i, g in enumerate(G)}
    png = user_stats_png(G, actions, liked, policy, f"{n} reactions")
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 200
    assert pixels.shape[1] > 600
    assert pixels.std() > 0.05  # not a blank image
