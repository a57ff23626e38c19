"""Charts: real PNGs (signature, decodable, sensible size) that depend on their data,
rendered safely from several threads at once."""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.image import imread

from bot.engine.learners import SeedLearner, make_learner
from bot.engine.listeners import best_mean_reward, resolve_user
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.training import run_chain
from bot.render.charts import (
    best_cells,
    learning_curve_figure,
    learning_curve_png,
    qtable_figure,
    qtable_png,
    rolling_mean,
    row_gaps,
    smoothed_curve,
    smoothing_window,
    training_figure,
    training_figure_png,
)
from bot.render.text import format_q_table

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
    data = learning_curve_png(log.rewards, title="curve")
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


# --------------------------------------------------------------- curves scale to the run


def test_the_smoothing_window_grows_with_the_run() -> None:
    assert smoothing_window(10) == 1
    assert smoothing_window(30) == 1  # a window of 50 on 30 steps was only the mean so far
    assert smoothing_window(1000) == 40
    assert smoothing_window(100_000) == 4000


@pytest.mark.parametrize("steps", [10, 1000, 100_000])
def test_curves_have_few_points_at_every_length(steps: int) -> None:
    values = np.random.default_rng(1).choice([-5.0, 1.0, 10.0], size=steps)
    curve = smoothed_curve(values)
    assert curve.x.size == curve.y.size
    assert curve.binned == (steps > 2000)
    if steps == 10:
        np.testing.assert_array_equal(curve.y, values)  # a few steps: the rewards themselves
    if curve.binned:
        assert curve.x.size <= 30  # 100,000 steps in 25 bins, not a solid band
        np.testing.assert_allclose(curve.y[0], values[:4000].mean())
        assert curve.x[0] == 2000.0
        assert "4,000-step bin" in curve.label


def _legend_clear_of_axes(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box, plot = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert not box.overlaps(plot), f"the legend of {ax.get_title()!r} covers its plot"


@pytest.mark.parametrize("steps", [10, 30, 1000, 100_000])
def test_learning_curve_draws_the_best_line_and_keeps_the_legend_off_the_data(steps) -> None:
    user = resolve_user("pop_lover")
    best = best_mean_reward(user.expected_rewards())
    log = run_chain(SeedLearner(), user, steps, np.random.default_rng(2))
    fig = learning_curve_figure(log.rewards, "curve", best=best)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    ceiling = lines[f"best achievable ({best:.2f})"]
    assert set(np.asarray(ceiling.get_ydata(), dtype=float)) == {best}
    assert any(label.startswith("mean so far") for label in lines)
    _legend_clear_of_axes(fig)


def test_best_achievable_mean_reward() -> None:
    assert best_mean_reward(resolve_user("pop_lover").expected_rewards()) == pytest.approx(9.43)
    # Two genres that only pay when alternated: no self-loop reaches the 2-cycle's 5.0.
    assert best_mean_reward(np.array([[0.0, 4.0], [6.0, 0.0]])) == pytest.approx(5.0)
    assert best_mean_reward(np.array([[1.0, 10.0], [0.0, 7.0]])) == pytest.approx(7.0)


# --------------------------------------------------------- each learner shows what it has


@pytest.mark.parametrize("steps", [10, 1000])
def test_four_panels_show_epsilon_for_seed_and_exploration_share_for_dyna(steps: int) -> None:
    user = resolve_user("pop_lover")
    seed_log = run_chain(SeedLearner(), user, steps, np.random.default_rng(3))
    dyna_log = run_chain(make_learner("dyna"), user, steps, np.random.default_rng(3))
    assert dyna_log.explored is not None
    seed_fig = training_figure(seed_log, "seed", epsilon=True)
    dyna_fig = training_figure(dyna_log, "dyna", epsilon=False)
    by_title = {ax.get_title(): ax for ax in seed_fig.axes}
    seed_panel = next(ax for t, ax in by_title.items() if t.startswith("ε decay"))
    assert seed_panel.get_ylabel() == "ε"
    dyna_titles = [ax.get_title() for ax in dyna_fig.axes]
    assert not any(t.startswith("ε") for t in dyna_titles)
    panel = next(ax for ax in dyna_fig.axes if ax.get_title().startswith("share of exploratory"))
    assert panel.get_ylabel() == "share of picks"
    shown = f"{dyna_log.explored.mean():.1%}"
    assert shown in panel.get_title() or dyna_log.explored.mean() < 0.01
    for fig in (seed_fig, dyna_fig):
        _legend_clear_of_axes(fig)


@pytest.mark.parametrize("steps", [10, 1000, 100_000])
def test_count_axis_has_integer_ticks(steps: int) -> None:
    user = resolve_user("pop_lover")
    log = run_chain(SeedLearner(), user, steps, np.random.default_rng(4))
    fig = training_figure(log, "counts")
    counts = next(ax for ax in fig.axes if ax.get_title() == "genres recommended")
    fig.canvas.draw()
    ticks = [t for t in counts.get_yticks() if 0 <= t <= counts.get_ylim()[1]]
    assert ticks
    assert all(float(t).is_integer() for t in ticks), ticks


# ------------------------------------------------------------------ the heatmap's best


def test_heatmap_colours_by_the_gap_to_the_rows_best_and_stars_every_tie() -> None:
    q = np.array(
        [
            [95.3, 98.3, 98.3, 96.0, 95.5],  # a tie for best, all within 3 points
            [70.0, 70.0, 70.0, 70.0, 70.0],  # nothing learned: no best, no star
            [80.0, 81.0, 82.0, 83.0, 84.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 2.0],
        ]
    )
    fig = qtable_figure(DEFAULT_GENRES, q, "ties")
    ax = fig.axes[0]
    image = ax.get_images()[0]
    shown = image.get_array()
    np.testing.assert_allclose(shown[0], row_gaps(q)[0])
    assert shown.mask[1].all()
    assert not shown.mask[0].any()
    assert image.norm.vmax == 0.0  # the best of every row is the top of the scale
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("98.30★") == 2
    assert sum("★" in t for t in texts) == 5
    assert "95.30" in texts  # values still written in
    assert "70.00" in texts


def test_text_table_stars_every_tie_and_no_flat_row() -> None:
    q = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 0.0, 1.0]])
    lines = format_q_table(["A", "B", "C"], q, {"A": "B", "B": "A", "C": "A"}).splitlines()
    assert lines[1].count("*") == 2  # both tied 3.00 cells
    assert "*" not in lines[2]  # the seed's argmax gave such ties to the first genre
    assert lines[3].count("*") == 1


def test_best_line_follows_a_taste_that_changes() -> None:
    from bot.cli.experiments import best_line
    from bot.engine.listeners import SimulatedUser

    doc = {
        "name": "swing",
        "phases": [
            {"steps": 30, "preferences": dict.fromkeys(DEFAULT_GENRES, 1.0)},
            {"preferences": dict.fromkeys(DEFAULT_GENRES, 0.0)},
        ],
    }
    from bot.engine.listeners import profile_from_mapping

    user: SimulatedUser = profile_from_mapping(doc, DEFAULT_GENRES)
    line = best_line(user, DEFAULT_GENRES, 100)
    assert isinstance(line, np.ndarray)
    np.testing.assert_allclose(line[:30], 10.0)
    np.testing.assert_allclose(line[30:], -5 * 0.2 + 1 * 0.3 + 10 * 0.5)
    fig = learning_curve_figure(np.zeros(100), best=line)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "best achievable (changes with the taste)" in labels
