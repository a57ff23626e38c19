"""The /stats picture of one member: their real reactions, and what the bot believes now.

Three panels: the share of likes over time (a rolling window that grows with the
history, over the running share), the share of likes per suggested genre (with the
counts written in), and the genre the bot would suggest next from each genre. Pure: it
builds its own figure on an Agg canvas and returns PNG bytes (rendered in the worker).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

LIKE = "#2ca02c"
DISLIKE = "#d62728"
LINE = "#1f77b4"
DPI = 110
MAX_DOTS = 60
"""Each reaction is drawn as a dot (👍 at 100 %, 👎 at 0 %) up to this many reactions."""


def rolling_window(n: int) -> int:
    """Smoothing window for ``n`` reactions: a tenth of the history, between 3 and 200."""
    return int(min(200, max(3, n // 10)))


def rolling_share(liked: Sequence[bool], window: int) -> np.ndarray:
    """Share of likes over the last ``window`` reactions (fewer at the start)."""
    x = np.asarray(liked, dtype=float)
    c = np.concatenate(([0.0], np.cumsum(x)))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def user_stats_png(
    genres: Sequence[str],
    actions: Sequence[str],
    liked: Sequence[bool],
    policy: Mapping[str, str | None],
    title: str,
) -> bytes:
    """The three-panel picture; ``actions``/``liked`` are the reactions, oldest first.

    ``policy`` maps each genre to the suggestion the bot believes best from it, or None
    where it has no preference yet.
    """
    fig = Figure(figsize=(10, 3.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    over_time, per_genre, belief = fig.subplots(1, 3, width_ratios=(1.3, 1.0, 0.8))

    n = len(liked)
    if n:
        steps = np.arange(1, n + 1)
        running = np.cumsum(np.asarray(liked, dtype=float)) / steps
        window = rolling_window(n)
        over_time.plot(steps, running, color="0.55", ls="--", lw=1.2, label="all so far")
        over_time.plot(
            steps, rolling_share(liked, window), color=LINE, lw=2, label=f"last {window}"
        )
        if n <= MAX_DOTS:  # beyond that the dots merge into two solid bands
            over_time.scatter(
                steps,
                np.asarray(liked, dtype=float),
                s=10,
                zorder=3,
                c=[LIKE if x else DISLIKE for x in liked],
            )
        over_time.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
    else:
        over_time.text(0.5, 0.5, "no reactions yet", ha="center", va="center")
    over_time.set_title("Share of likes over time")
    over_time.set_xlabel("reaction")
    over_time.set_ylim(-0.05, 1.05)
    over_time.yaxis.set_major_formatter(PercentFormatter(1.0))
    over_time.xaxis.set_major_locator(MaxNLocator(integer=True))

    counts = {g: [0, 0] for g in genres}
    for action, ok in zip(actions, liked, strict=True):
        if action in counts:
            counts[action][0] += int(ok)
            counts[action][1] += 1
    ys = np.arange(len(genres))
    shares = [counts[g][0] / counts[g][1] if counts[g][1] else 0.0 for g in genres]
    per_genre.barh(ys, shares, color=LIKE, height=0.6)
    for y, g in zip(ys, genres, strict=True):
        k, m = counts[g]
        label = f"{k}/{m}" if m else "not rated yet"
        per_genre.text(0.02, y, label, va="center", ha="left", fontsize=9, color="black")
    per_genre.set_yticks(ys, list(genres))
    per_genre.invert_yaxis()
    per_genre.set_xlim(0, 1)
    per_genre.xaxis.set_major_formatter(PercentFormatter(1.0))
    per_genre.set_title("Likes per suggested genre")

    belief.set_axis_off()
    belief.set_title("What I'd suggest next")
    rows = len(genres)
    for i, g in enumerate(genres):
        row_y = 1 - (i + 0.5) / rows
        best = policy.get(g)
        belief.text(0.0, row_y, f"after {g}", ha="left", va="center", fontsize=10)
        belief.text(
            0.56,
            row_y,
            best or "no preference yet",
            ha="left",
            va="center",
            fontsize=10,
            weight="bold" if best else "normal",
            color="black" if best else "0.5",
        )

    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white", pil_kwargs={"compress_level": 2})
    return buf.getvalue()
