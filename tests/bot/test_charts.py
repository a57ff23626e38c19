"""Charts: real PNGs (signature, decodable, sensible size) that depend on their data,
rendered safely from several threads at once."""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.image import imread

from bot.engine.learners import SeedLearner
from bot.engine.listeners import resolve_user
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.training import run_chain
from bot.render.charts import (
    best_cells,
    learning_curve_png,
    qtable_png,
    rolling_mean,
    training_figure_png,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def decoded(data: bytes) -> np.ndarray:
    return imread(io.BytesIO(data), format="png")


@pytest.fixture(scope="module")
def log():
    return run_chain(SeedLearner(), resolve_user("pop_lover"), 600, np.random.default_rng(7))


@pytest.fixture(scope="module")
def table_png(log) -> bytes:
    """Rendered once: each PNG costs a few tenths of a second of CPU."""
    return qtable_png(DEFAULT_GENRES, log.state.q, title="Q-table")


def test_qtable_png_is_a_real_png(table_png: bytes) -> None:
    w, h = png_size(table_png)
    assert 400 <= w <= 2000
    assert 400 <= h <= 2000
    assert decoded(table_png).shape[:2] == (h, w)


def test_qtable_png_depends_on_the_table(table_png: bytes) -> None:
    assert qtable_png(DEFAULT_GENRES, np.eye(5)) != table_png


def test_qtable_png_grows_with_the_genres(table_png: bytes) -> None:
    genres = [f"G{i}" for i in range(7)]
    w, _ = png_size(qtable_png(genres, np.arange(49.0).reshape(7, 7)))
    assert w > png_size(table_png)[0]


def test_learning_curve_png(log) -> None:
    data = learning_curve_png(log.rewards, window=50, title="curve")
    w, h = png_size(data)
    assert w > h > 200
    assert decoded(data).ndim == 3
    assert png_size(learning_curve_png([])) == (w, h)  # empty input still renders
    assert png_size(learning_curve_png(np.ones(50_000))) == (w, h)  # thinned, same size


def test_training_figure_is_the_large_2x2(log, table_png: bytes) -> None:
    data = training_figure_png(log, title="pop_lover")
    w, h = png_size(data)
    qw, qh = png_size(table_png)
    assert w > qw
    assert h > qh
    assert decoded(data).shape[:2] == (h, w)


def test_best_cells_marks_only_real_decisions() -> None:
    q = np.array([[0.0, 0.0, 0.0], [1.0, 3.0, 3.0], [5.0, 0.0, 1.0]])
    assert best_cells(q) == [[], [1, 2], [0]]


def test_rolling_mean() -> None:
    out = rolling_mean(np.array([1.0, 3.0, 5.0, 7.0]), window=2)
    np.testing.assert_allclose(out, [1.0, 2.0, 4.0, 6.0])
    assert rolling_mean(np.array([]), 5).size == 0


def test_concurrent_rendering_in_threads(log) -> None:
    """Figures never share state: the same table gives the same bytes from any thread."""
    tables = [np.zeros((5, 5)), np.eye(5)] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: qtable_png(DEFAULT_GENRES, q), tables))
        curves = list(pool.map(lambda _: learning_curve_png(log.rewards), range(2)))
    assert got[0] == got[2]
    assert got[1] == got[3]
    assert got[0] != got[1]
    assert curves[0] == curves[1]
    assert curves[0][:8] == PNG_MAGIC
