"""PNG charts of Q-tables and training runs, rendered off-screen.

Every function is pure: it builds its own :class:`matplotlib.figure.Figure` on an Agg
canvas and returns PNG bytes. Nothing touches pyplot's global state, so the Discord bot
can render charts in worker threads at the same time without figures bleeding into
each other, and no display is ever needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg backend, explicitly
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    from bot.engine.training import TrainingLog

CMAP = "viridis"
ACCENT = "#d62728"
LINE = "#1f77b4"
DPI = 110
MAX_POINTS = 4000
"""Curves longer than this are thinned before plotting: the PNG looks the same, renders faster."""


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


def best_cells(q: np.ndarray) -> list[list[int]]:
    """Per row, the columns holding the row's best value.

    A row whose values are all equal (e.g. never visited) has no best action, so it
    gets no mark; that keeps an untrained table from looking like a decision.
    """
    out: list[list[int]] = []
    for row in np.asarray(q, dtype=float):
        if np.allclose(row, row[0]):
            out.append([])
        else:
            out.append([int(j) for j in np.flatnonzero(np.isclose(row, row.max()))])
    return out


def _text_colour(value: float, lo: float, hi: float) -> str:
    """Dark text on the bright end of viridis, white on the dark end."""
    frac = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    return "black" if frac > 0.6 else "white"


def _draw_qtable(ax: Axes, genres: Sequence[str], q: np.ndarray, title: str) -> None:
    """Annotated heatmap; the best suggestion of each row gets a red box and a star."""
    q = np.asarray(q, dtype=float)
    n = len(genres)
    lo, hi = float(q.min()), float(q.max())
    top = hi if hi > lo else lo + 1.0
    image = ax.imshow(q, cmap=CMAP, vmin=lo, vmax=top, aspect="auto", interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="Q value")
    font = 10 if n <= 6 else 8 if n <= 10 else 6
    best = best_cells(q)
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
                color=_text_colour(q[i, j], lo, hi),
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


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most MAX_POINTS evenly spaced points (always the last one)."""
    if x.size <= MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, MAX_POINTS).astype(np.int64))
    return x[keep], y[keep]


def _no_data(ax: Axes, title: str) -> None:
    ax.text(0.5, 0.5, "no steps yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=12)


def _draw_curve(ax: Axes, rewards: np.ndarray, window: int, title: str) -> None:
    """Rolling mean reward, plus the running mean as a dashed reference."""
    r = np.asarray(rewards, dtype=float)
    if r.size == 0:
        _no_data(ax, title)
        return
    steps = np.arange(1, r.size + 1)
    x, y = _thin(steps, rolling_mean(r, window))
    ax.plot(x, y, color=LINE, linewidth=1.4, label=f"rolling mean (window {window})")
    x2, y2 = _thin(steps, np.cumsum(r) / steps)
    ax.plot(x2, y2, color="grey", linestyle="--", linewidth=1.0, label="mean so far")
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)


def _draw_epsilon(ax: Axes, epsilons: np.ndarray) -> None:
    e = np.asarray(epsilons, dtype=float)
    if e.size == 0:
        _no_data(ax, "ε decay")
        return
    x, y = _thin(np.arange(1, e.size + 1), e)
    ax.plot(x, y, color="#2ca02c", linewidth=1.6)
    ax.set_ylim(0, max(1.02, float(e.max()) * 1.02))
    ax.set_xlabel("step")
    ax.set_ylabel("ε (exploration rate)")
    ax.set_title(f"ε decay (final {e[-1]:.3f})", fontsize=12)
    ax.grid(alpha=0.3)


def _draw_counts(ax: Axes, genres: Sequence[str], actions: np.ndarray) -> None:
    """How often each genre was suggested; the most suggested is highlighted."""
    counts = np.bincount(np.asarray(actions, dtype=np.int64), minlength=len(genres))
    colours = [ACCENT if c == counts.max() and c > 0 else LINE for c in counts]
    bars = ax.bar(range(len(genres)), counts, color=colours)
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=9, padding=2)
    ax.set_xticks(range(len(genres)), labels=list(genres), rotation=30, ha="right")
    ax.set_ylabel("times suggested")
    ax.set_ylim(0, max(1, int(counts.max())) * 1.15)
    ax.set_title("genres recommended", fontsize=12)
    ax.grid(axis="y", alpha=0.3)


def qtable_png(genres: Sequence[str], q: np.ndarray, title: str = "Q-table") -> bytes:
    """An annotated Q-table heatmap: rows current genre, columns suggestion, best boxed."""
    n = len(genres)
    side = max(5.0, 0.9 * n + 2.5)
    fig = _figure(side + 1.2, side)
    _draw_qtable(fig.add_subplot(), genres, q, title)
    return _png(fig)


def learning_curve_png(
    rewards: Sequence[float] | np.ndarray, window: int = 50, title: str = "Learning curve"
) -> bytes:
    """The rolling mean reward per step (window ``window``)."""
    fig = _figure(7.5, 4.2)
    _draw_curve(fig.add_subplot(), np.asarray(rewards, dtype=float), window, title)
    return _png(fig)


def training_figure_png(log: TrainingLog, title: str = "Training run", window: int = 50) -> bytes:
    """The deck's 2×2 figure: Q-table heatmap, rolling reward, ε decay, genres recommended."""
    fig = _figure(13.0, 9.5)
    fig.suptitle(
        f"{title}  ·  {log.rewards.size:,} steps  ·  mean reward {log.mean_reward:.2f}"
        f" (last 100: {log.mean_reward_last_100:.2f})",
        fontsize=14,
    )
    axes = fig.subplots(2, 2)
    _draw_qtable(axes[0, 0], log.genres, log.state.q, "Q-table (★ = best suggestion)")
    _draw_curve(axes[0, 1], log.rewards, window, f"rolling mean reward (window {window})")
    _draw_epsilon(axes[1, 0], log.epsilons)
    _draw_counts(axes[1, 1], log.genres, log.actions)
    return _png(fig)
