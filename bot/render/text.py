"""Plain-text renderings of a user's table, shared by the cogs, the console and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CORNER = "now \\ next"


def best_cells(q: np.ndarray) -> list[list[int]]:
    """Per row, the columns holding the row's best value (every one of them when tied).

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


def format_q_table(
    genres: Sequence[str], q: np.ndarray, policy: Mapping[str, str] | None = None
) -> str:
    """A monospace Q-table: rows are the current genre, columns the suggestion.

    Every best suggestion of a row is marked with ``*``: tied cells all get one (the
    learner breaks ties at random, so marking only one would claim a choice it does not
    make), and a row of equal values gets none. ``policy`` is accepted for callers that
    pass it; the marks come from the values.
    """
    q = np.asarray(q, dtype=float)
    best = best_cells(q)
    cells = [
        [f"{q[i, j]:.2f}" + ("*" if j in best[i] else " ") for j in range(len(genres))]
        for i in range(len(genres))
    ]
    first = max(len(CORNER), *(len(g) for g in genres))
    widths = [max(len(a), *(len(row[j]) for row in cells)) for j, a in enumerate(genres)]
    lines = [
        "  ".join([CORNER.ljust(first), *(a.rjust(w) for a, w in zip(genres, widths, strict=True))])
    ]
    for s, row in zip(genres, cells, strict=True):
        lines.append(
            "  ".join([s.ljust(first), *(c.rjust(w) for c, w in zip(row, widths, strict=True))])
        )
    return "\n".join(line.rstrip() for line in lines)


def format_policy(policy: Mapping[str, str]) -> str:
    """``Pop→Pop, Rock→Jazz, ...`` in the order of the mapping."""
    return ", ".join(f"{s}→{a}" for s, a in policy.items())


SETTING_SYMBOLS = {
    "alpha": "α",
    "gamma": "γ",
    "epsilon": "ε₀",
    "epsilon_decay": "decay",
    "epsilon_min": "ε_min",
}


def format_settings(settings: Mapping[str, float]) -> str:
    """``γ=0.9`` or ``α=0.1 γ=0.9 ε₀=1 decay=0.995 ε_min=0.1``, in the given order."""
    return " ".join(f"{SETTING_SYMBOLS.get(k, k)}={v:g}" for k, v in settings.items())


def table_summary(view: Any) -> str:
    """One line: ε, rewards applied and the current genre of a TableView."""
    current = view.current_genre or "none yet"
    plural = "" if view.rewards == 1 else "s"
    return f"ε = {view.epsilon:.3f} · {view.rewards} reward{plural} applied · now on {current}"


def table_dict(view: Any) -> dict[str, Any]:
    """JSON-ready form of a TableView (the ``qtable --json`` keys)."""
    return {
        "user_id": int(view.user_id),
        "genres": list(view.genres),
        "q_table": [[float(x) for x in row] for row in np.asarray(view.q, dtype=float)],
        "epsilon": float(view.epsilon),
        "rewards": int(view.rewards),
        "current_genre": view.current_genre,
    }
