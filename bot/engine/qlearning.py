"""The pure tabular Q-learning engine: the TD rule, ε-greedy choice and the stored state.

Nothing here does I/O. Every function takes its randomness from a caller-owned
``numpy.random.Generator`` so that a seed reproduces a run exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_GENRES: tuple[str, ...] = ("Pop", "Rock", "Jazz", "Classical", "HipHop")


def validate_genres(genres: Iterable[str]) -> tuple[str, ...]:
    """Return the genres as a tuple, rejecting lists a Q-table cannot be built on."""
    out = tuple(str(g).strip() for g in genres)
    if any(not g for g in out):
        raise ValueError(f"genres must not be empty strings: {list(out)!r}")
    if len(out) < 2:
        raise ValueError(f"need at least 2 genres, got {len(out)}: {list(out)!r}")
    lowered = [g.casefold() for g in out]
    dupes = sorted({g for g in out if lowered.count(g.casefold()) > 1})
    if dupes:
        raise ValueError(f"duplicate genres: {', '.join(dupes)}")
    return out


def check_range(
    name: str, value: float, lo: float, hi: float, *, lo_open: bool, hi_open: bool
) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a finite number in the interval."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def td_update(
    q: np.ndarray, s: int, a: int, r: float, s_next: int, alpha: float, gamma: float
) -> float:
    """Apply Q(s,a) += α[r + γ·max Q(s',·) − Q(s,a)] in place and return the TD error."""
    td_error = r + gamma * float(q[s_next].max()) - float(q[s, a])
    q[s, a] += alpha * td_error
    return td_error


def greedy(row: np.ndarray, rng: np.random.Generator) -> int:
    """Best action of one Q-row; ties are broken uniformly at random, never by position."""
    best = np.flatnonzero(row == row.max())
    if best.size == 1:
        return int(best[0])
    return int(best[rng.integers(best.size)])


def epsilon_greedy(row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability ε a uniformly random action, otherwise a greedy one."""
    if rng.random() < epsilon:
        return int(rng.integers(row.size))
    return greedy(row, rng)


def greedy_policy(q: np.ndarray) -> list[int]:
    """Deterministic per-row argmax for display; ties resolve to the first best column."""
    return [int(i) for i in np.argmax(q, axis=1)]


MEMORY_PLANES = 3
"""Planes of :attr:`LearnerState.memory`; what each holds is the learner's business."""


@dataclass(slots=True)
class LearnerState:
    """Everything a learner keeps about one listener.

    ``q`` is the Q-table (rows: current genre, columns: suggested genre).
    ``visits`` and ``reward_sum`` count rewarded steps per (state, action); the
    seed learner ignores them, model-based learners build their reward model on them.
    They are the listener's true history (explanations quote them), never rescaled.
    ``memory`` is a learner's own working evidence, shape (MEMORY_PLANES, n, n), or
    None: ``dyna`` keeps its forgetting counts and change statistic there, and a
    newcomer's community prior starts there as pseudo-reactions.
    """

    q: np.ndarray
    epsilon: float
    visits: np.ndarray = field(default=None)  # type: ignore[arg-type]  # set in __post_init__
    reward_sum: np.ndarray = field(default=None)  # type: ignore[arg-type]  # likewise
    memory: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.q.shape[0]
        if self.q.shape != (n, n):
            raise ValueError(f"Q-table must be square, got shape {self.q.shape}")
        if self.visits is None:
            self.visits = np.zeros((n, n), dtype=np.int64)
        if self.reward_sum is None:
            self.reward_sum = np.zeros((n, n), dtype=np.float64)

    @classmethod
    def fresh(cls, n_genres: int, epsilon: float) -> LearnerState:
        return cls(q=np.zeros((n_genres, n_genres), dtype=np.float64), epsilon=float(epsilon))

    def copy(self) -> LearnerState:
        memory = None if self.memory is None else self.memory.copy()
        return LearnerState(
            self.q.copy(), self.epsilon, self.visits.copy(), self.reward_sum.copy(), memory
        )


def remap_state(
    state: LearnerState, old_genres: Sequence[str], new_genres: Sequence[str]
) -> LearnerState:
    """``state`` re-indexed from ``old_genres`` to ``new_genres`` by (case-insensitive) name.

    Kept genres keep their values under their names, removed ones are dropped, added ones
    get zero rows and columns (no visits, no reward, Q = 0); ``memory`` planes likewise.
    This is only the bookkeeping: what a new genre's values should be is each learner's
    rule (``Learner.adapt``).
    """
    old = {g.casefold(): i for i, g in enumerate(old_genres)}
    idx = np.array([old.get(g.casefold(), -1) for g in new_genres], dtype=np.intp)
    keep = idx >= 0
    src = idx[keep]
    n = len(idx)

    def move(m: np.ndarray) -> np.ndarray:
        out = np.zeros((n, n), dtype=m.dtype)
        out[np.ix_(keep, keep)] = m[np.ix_(src, src)]
        return out

    memory = None if state.memory is None else np.stack([move(plane) for plane in state.memory])
    return LearnerState(
        move(state.q), state.epsilon, move(state.visits), move(state.reward_sum), memory
    )


@dataclass(slots=True)
class BatchState:
    """Many independent listeners' states, users axis first, for batched training."""

    q: np.ndarray  # (U, n, n)
    epsilon: np.ndarray  # (U,)
    visits: np.ndarray  # (U, n, n)
    reward_sum: np.ndarray  # (U, n, n)
    memory: np.ndarray | None = None  # (U, MEMORY_PLANES, n, n), as LearnerState.memory

    @classmethod
    def fresh(cls, n_users: int, n_genres: int, epsilon: float) -> BatchState:
        shape = (n_users, n_genres, n_genres)
        return cls(
            q=np.zeros(shape),
            epsilon=np.full(n_users, float(epsilon)),
            visits=np.zeros(shape, dtype=np.int64),
            reward_sum=np.zeros(shape),
        )

    def user(self, i: int) -> LearnerState:
        """One user's state, copied out (e.g. to inspect or persist)."""
        return LearnerState(
            self.q[i].copy(),
            float(self.epsilon[i]),
            self.visits[i].copy(),
            self.reward_sum[i].copy(),
            None if self.memory is None else self.memory[i].copy(),
        )


def greedy_batch(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of (U, n) with ties broken uniformly at random."""
    best = rows == rows.max(axis=1, keepdims=True)
    return np.argmax(best * rng.random(rows.shape), axis=1)


def td_update_batch(
    q: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    r: np.ndarray,
    s_next: np.ndarray,
    alpha: float | np.ndarray,
    gamma: float,
) -> np.ndarray:
    """The TD rule for every user at once; returns the TD errors, shape (U,)."""
    idx = np.arange(q.shape[0])
    td = r + gamma * q[idx, s_next].max(axis=1) - q[idx, s, a]
    q[idx, s, a] += alpha * td
    return td
