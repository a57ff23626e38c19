"""PNG charts of Q-tables and training runs, rendered off-screen.

Every function is pure: it builds its own :class:`matplotlib.figure.Figure` on an Agg
canvas and returns PNG bytes. Nothing touches pyplot's global state, so the Discord bot
can render charts in worker threads at the same time without figures bleeding into
each other, and no display is ever needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg backend, explicitly
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from bot.render.text import best_cells

__all__ = ["best_cells", "learning_curve_png", "qtable_png", "training_figure_png"]

if TYPE_CHECKING:
    from bot.engine.training import TrainingLog

CMAP = "viridis"
ACCENT = "#d62728"
LINE = "#1f77b4"
DPI = 110
MAX_POINTS = 4000
"""Curves longer than this are thinned before plotting: the PNG looks the same, renders faster."""
CURVE_POINTS = 25
"""A curve's smoothing window is the run's length over this (1 below 50 steps)."""
BIN_ABOVE = 2000
"""Runs longer than this are drawn as bin means instead of a trailing mean."""
FLAT_ROW = "#d9d9d9"
"""Background of a row whose values are all equal (no best suggestion yet)."""
MIN_GAP_SCALE = 1.0
"""The heatmap's colour scale spans at least this many Q points below each row's best."""


def _figure(width: float, height: float) -> Figure:
    """A figure bound to its own Agg canvas (thread-safe: no pyplot registry)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # Fast zlib level: the encoder was a third of the render time at the default level,
    # for files only ~20 % smaller.
    fig.savefig(buf, format="png", facecolor="white", pil_kwargs={"compress_level": 2})
    return buf.getvalue()


def _text_colour(frac: float) -> str:
    """Dark text on the bright end of viridis, white on the dark end."""
    return "black" if frac > 0.6 else "white"


def row_gaps(q: np.ndarray) -> np.ndarray:
    """``Q(s, a) − max Q(s, ·)``: 0 for each row's best, negative for the rest.

    Colouring by the gap, not by Q, makes each row's best stand out however close the
    values are: a 98.3 next to a 95.3 is no longer drawn as a strong dislike.
    """
    q = np.asarray(q, dtype=float)
    return q - q.max(axis=1, keepdims=True)


def _draw_qtable(ax: Axes, genres: Sequence[str], q: np.ndarray, title: str) -> None:
    """Heatmap coloured by the gap to the row's best, values written in, every best starred."""
    q = np.asarray(q, dtype=float)
    n = len(genres)
    gaps = row_gaps(q)
    floor = min(float(gaps.min()), -MIN_GAP_SCALE)
    best = best_cells(q)
    # A row with no best (all values equal: nothing learned there) is grey, not "all best".
    flat = np.array([not cells for cells in best])[:, np.newaxis].repeat(n, axis=1)
    cmap = colormaps[CMAP].with_extremes(bad=FLAT_ROW)
    image = ax.imshow(
        np.ma.masked_array(gaps, mask=flat),
        cmap=cmap,
        vmin=floor,
        vmax=0.0,
        aspect="auto",
        interpolation="nearest",
    )
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("Q(s,a) − max Q(s,·)   (0 = best in the row)")
    font = 10 if n <= 6 else 8 if n <= 10 else 6
    for i in range(n):
        for j in range(n):
            star = "★" if j in best[i] else ""
            ax.text(
                j,
                i,
                f"{q[i, j]:.2f}{star}",
                ha="center",
                va="center",
                fontsize=font,
                color="black" if flat[i, j] else _text_colour(1.0 - gaps[i, j] / floor),
                fontweight="bold" if star else "normal",
            )
        for j in best[i]:
            box = Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=ACCENT, linewidth=2.5)
            ax.add_patch(box)
    ax.set_xticks(range(n), labels=list(genres), rotation=30, ha="right")
    ax.set_yticks(range(n), labels=list(genres))
    ax.set_xlabel("suggested genre (action)")
    ax.set_ylabel("current genre (state)")
    ax.set_title(title, fontsize=12)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start, so no gap)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    window = max(1, int(window))
    csum = np.concatenate([[0.0], np.cumsum(v)])
    ends = np.arange(1, v.size + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)


def smoothing_window(steps: int) -> int:
    """A window that grows with the run: 1 (raw) for a few steps, ~steps/25 beyond.

    A fixed window of 50 was the mean so far on a 30-step run and a solid band of noise
    on a 100,000-step one.
    """
    return max(1, steps // CURVE_POINTS)


@dataclass(frozen=True)
class Curve:
    """What a learning-curve panel draws: x, y and the words for its legend."""

    x: np.ndarray
    y: np.ndarray
    label: str
    binned: bool


def smoothed_curve(values: np.ndarray, what: str = "reward") -> Curve:
    """Raw values for short runs, a trailing mean for medium ones, bin means for long ones.

    Beyond BIN_ABOVE steps the run is cut into equal bins of ``smoothing_window`` steps,
    each drawn at its centre: about CURVE_POINTS points, readable at 100,000 steps.
    """
    v = np.asarray(values, dtype=float)
    n = v.size
    window = smoothing_window(n)
    steps = np.arange(1, n + 1, dtype=float)
    if window == 1:
        return Curve(steps, v, f"{what} per step", binned=False)
    if n <= BIN_ABOVE:
        return Curve(steps, rolling_mean(v, window), f"mean of the last {window:,} steps", False)
    bins = n // window
    edges = np.linspace(0, n, bins + 1).round().astype(np.int64)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    means = (csum[edges[1:]] - csum[edges[:-1]]) / np.diff(edges)
    centres = (edges[1:] + edges[:-1]) / 2.0
    return Curve(centres, means, f"mean of each {window:,}-step bin", binned=True)


def _no_data(ax: Axes, title: str) -> None:
    ax.text(0.5, 0.5, "no steps yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=12)


def _legend_below(ax: Axes) -> None:
    """Under the axes, outside them: a legend there can never cover the data."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=min(3 if sum(map(len, labels)) <= 75 else 2, len(labels)),
        fontsize=9,
        frameon=False,
    )


def _draw_curve(ax: Axes, rewards: np.ndarray, title: str, best: float | np.ndarray | None) -> None:
    """The smoothed reward, the mean so far, and the best achievable mean where known."""
    r = np.asarray(rewards, dtype=float)
    if r.size == 0:
        _no_data(ax, title)
        return
    curve = smoothed_curve(r)
    raw = curve.label.endswith("per step")
    ax.plot(
        curve.x,
        curve.y,
        color=LINE,
        linewidth=1.4,
        marker="o" if raw or curve.x.size <= 60 else None,
        markersize=4,
        label=curve.label,
    )
    steps = np.arange(1, r.size + 1)
    mean_so_far = np.cumsum(r) / steps
    keep = np.unique(np.linspace(0, r.size - 1, min(r.size, MAX_POINTS)).astype(np.int64))
    ax.plot(
        steps[keep],
        mean_so_far[keep],
        color="grey",
        linestyle="--",
        linewidth=1.0,
        label=f"mean so far ({mean_so_far[-1]:.2f})",
    )
    if best is not None:
        _draw_best(ax, best, r.size)
    ax.set_xlim(0.5 if r.size < 50 else 0, r.size + (0.5 if r.size < 50 else 0))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    _legend_below(ax)


def _draw_best(ax: Axes, best: float | np.ndarray, steps: int) -> None:
    """The best achievable mean reward: a level line, or a step line when the taste changes."""
    values = np.asarray(best, dtype=float)
    if values.ndim == 0 or np.allclose(values, values.flat[0]):
        level = float(values.flat[0])
        label = f"best achievable ({level:.2f})"
        ax.axhline(level, color=ACCENT, linestyle=":", linewidth=1.4, label=label)
        return
    ax.plot(
        np.arange(1, steps + 1),
        values[:steps],
        color=ACCENT,
        linestyle=":",
        linewidth=1.4,
        drawstyle="steps-post",
        label="best achievable (changes with the taste)",
    )


def _draw_exploration(ax: Axes, log: TrainingLog, epsilon: bool) -> None:
    """ε for a learner that has one; otherwise the share of picks that were not greedy."""
    if log.rewards.size == 0:
        _no_data(ax, "exploration")
        return
    if epsilon:
        e = np.asarray(log.epsilons, dtype=float)
        keep = np.unique(np.linspace(0, e.size - 1, min(e.size, MAX_POINTS)).astype(np.int64))
        ax.plot(
            keep + 1, e[keep], color="#2ca02c", linewidth=1.6, label="ε (chance of a random pick)"
        )
        title = f"ε decay (final {e[-1]:.3f})"
    else:
        title = "exploration"
    explored = getattr(log, "explored", None)
    if explored is not None and explored.size:
        picks = np.asarray(explored, dtype=float)
        share = smoothed_curve(picks)
        if share.label.endswith("per step"):  # a few steps: 0/1 per step says little
            share = Curve(share.x, np.cumsum(picks) / share.x, "so far", binned=False)
        ax.plot(
            share.x,
            share.y,
            color="#9467bd",
            linewidth=1.2,
            marker="o" if share.x.size <= 60 else None,
            markersize=3,
            label=f"share of picks not the greedy genre ({share.label})",
        )
        if not epsilon:
            overall = float(np.mean(explored))
            shown = f"{overall:.1%}" if overall >= 0.01 or overall == 0 else f"{overall:.2%}"
            title = f"share of exploratory picks (overall {shown})"
    top = 1.0
    if not epsilon and explored is not None and explored.size:
        top = min(1.0, max(0.25, float(share.y.max()) * 1.15))  # room for a low share
    ax.set_ylim(-0.02 * top, top * 1.02)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("step")
    ax.set_ylabel("ε" if epsilon else "share of picks")
    ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    _legend_below(ax)


def _draw_counts(ax: Axes, genres: Sequence[str], actions: np.ndarray) -> None:
    """How often each genre was suggested; the most suggested is highlighted."""
    counts = np.bincount(np.asarray(actions, dtype=np.int64), minlength=len(genres))
    colours = [ACCENT if c == counts.max() and c > 0 else LINE for c in counts]
    bars = ax.bar(range(len(genres)), counts, color=colours)
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=9, padding=2)
    ax.set_xticks(range(len(genres)), labels=list(genres), rotation=30, ha="right")
    ax.set_ylabel("times suggested")
    ax.set_ylim(0, max(1, int(counts.max())) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_title("genres recommended", fontsize=12)
    ax.grid(axis="y", alpha=0.3)


def qtable_png(genres: Sequence[str], q: np.ndarray, title: str = "Q-table") -> bytes:
    """An annotated Q-table heatmap: rows current genre, columns suggestion, best boxed."""
    return _png(qtable_figure(genres, q, title))


def qtable_figure(genres: Sequence[str], q: np.ndarray, title: str = "Q-table") -> Figure:
    """The figure behind :func:`qtable_png` (tests inspect it)."""
    n = len(genres)
    side = max(5.0, 0.9 * n + 2.5)
    fig = _figure(side + 1.2, side)
    _draw_qtable(fig.add_subplot(), genres, q, title)
    return fig


def learning_curve_png(
    rewards: Sequence[float] | np.ndarray,
    title: str = "Learning curve",
    best: float | np.ndarray | None = None,
) -> bytes:
    """The reward per step, smoothed to the run's length (see :func:`smoothed_curve`);
    ``best`` draws the best achievable mean reward (known for simulated listeners)."""
    return _png(learning_curve_figure(rewards, title, best))


def learning_curve_figure(
    rewards: Sequence[float] | np.ndarray,
    title: str = "Learning curve",
    best: float | np.ndarray | None = None,
) -> Figure:
    """The figure behind :func:`learning_curve_png` (tests inspect it)."""
    fig = _figure(7.5, 4.6)
    _draw_curve(fig.add_subplot(), np.asarray(rewards, dtype=float), title, best)
    return fig


def training_figure_png(
    log: TrainingLog,
    title: str = "Training run",
    *,
    best: float | np.ndarray | None = None,
    epsilon: bool = True,
) -> bytes:
    """The deck's 2×2 figure: Q-table heatmap, reward curve, exploration, genres recommended.

    ``epsilon`` says whether the learner has an ε schedule (``seed``); without one
    (``dyna``) the exploration panel shows the share of picks that were not greedy.
    """
    return _png(training_figure(log, title, best=best, epsilon=epsilon))


def training_figure(
    log: TrainingLog,
    title: str = "Training run",
    *,
    best: float | np.ndarray | None = None,
    epsilon: bool = True,
) -> Figure:
    """The figure behind :func:`training_figure_png` (tests inspect it)."""
    fig = _figure(13.0, 10.0)
    last = min(100, log.rewards.size)
    fig.suptitle(
        f"{title}  ·  {log.rewards.size:,} steps  ·  mean reward {log.mean_reward:.2f}"
        f" (last {last}: {log.mean_reward_last_100:.2f})",
        fontsize=14,
    )
    axes = fig.subplots(2, 2)
    _draw_qtable(axes[0, 0], log.genres, log.state.q, "Q-table (★ = best suggestion)")
    _draw_curve(axes[0, 1], log.rewards, "reward", best)
    _draw_exploration(axes[1, 0], log, epsilon)
    _draw_counts(axes[1, 1], log.genres, log.actions)
    return fig
