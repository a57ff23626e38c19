"""Learners from outside qtune, on qtune's batch interface, for the learning benchmark.

* ``beta-thompson``: a state-blind Beta-Bernoulli Thompson bandit on the liked share
  (reward rescaled to [0, 1]), Beta(1, 1) priors: the textbook baseline, numpy only.
* ``vw-squarecb`` / ``vw-bag5``: Vowpal Wabbit ``--cb_explore_adf`` with ``--squarecb`` or
  ``--bag 5`` (the engine behind Azure Personalizer), the current genre as the shared
  context (namespace ``s``) crossed with the action (namespace ``a``) by ``-q sa``, so a
  taste that depends on the current genre can be learned; one action line per genre,
  cost = (10 − r)/15, one predict and one learn per step, the action sampled from VW's
  probabilities. Only when ``vowpalwabbit`` is installed: ``uv sync --group peers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.qlearning import BatchState, LearnerState

LOW, HIGH = -5.0, 10.0
VW_BASE = "--cb_explore_adf"
VW_INTERACTION = "-q sa"
"""Shared context (current genre, namespace ``s``) × action (namespace ``a``): without it
VW's linear cost is w_s + w_a, the same ranking of genres in every state (state-blind)."""


@dataclass(frozen=True, slots=True)
class PeerParams:
    """A peer's only setting the benchmark reads: the γ its Q* is scored with."""

    gamma: float = 0.9

    def as_dict(self) -> dict[str, float]:
        return {"gamma": self.gamma}


class BetaThompson:
    """State-blind Thompson sampling over genres (batch only)."""

    name = "beta-thompson"

    def __init__(self) -> None:
        self.params = PeerParams()

    def init_batch(self, n_users: int, n_genres: int) -> BatchState:
        return BatchState.fresh(n_users, n_genres, 1.0)

    def select_batch(self, bs: BatchState, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = bs.visits.sum(axis=1).astype(float)  # (U, n): reactions per genre
        liked = np.clip((bs.reward_sum.sum(axis=1) - n * LOW) / (HIGH - LOW), 0.0, n)
        return np.argmax(rng.beta(1.0 + liked, 1.0 + n - liked), axis=1)

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> None:
        idx = np.arange(bs.q.shape[0])
        bs.visits[idx, s, a] += 1
        bs.reward_sum[idx, s, a] += r

    # the single-listener protocol, for completeness
    def initial_state(self, n_genres: int) -> LearnerState:
        return LearnerState.fresh(n_genres, 1.0)

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        bs = BatchState(state.q[None], np.array([1.0]), state.visits[None], state.reward_sum[None])
        return int(self.select_batch(bs, np.array([s]), rng)[0])

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        state.visits[s, a] += 1
        state.reward_sum[s, a] += r
        return 0.0


def vw_available() -> bool:
    try:
        import vowpalwabbit  # noqa: F401
    except ImportError:
        return False
    return True


class VowpalWabbit:
    """One VW contextual-bandit workspace per listener (batch interface, a loop inside)."""

    def __init__(self, name: str, args: str, genres: Sequence[str]) -> None:
        self.name = name
        self.args = args
        self.genres = tuple(genres)
        self.params = PeerParams()
        self._ws: list = []
        self._pmf: list[list[float]] = []

    def init_batch(self, n_users: int, n_genres: int) -> BatchState:
        import vowpalwabbit

        for ws in self._ws:
            ws.finish()
        self._ws = [
            vowpalwabbit.Workspace(f"{self.args} --quiet --random_seed {i}") for i in range(n_users)
        ]
        self._pmf = [[1.0 / n_genres] * n_genres for _ in range(n_users)]
        return BatchState.fresh(n_users, n_genres, 1.0)

    def _example(
        self, s: int, chosen: int | None = None, cost: float = 0.0, p: float = 1.0
    ) -> list[str]:
        lines = [f"shared |s c={self.genres[s]}"]
        for j, g in enumerate(self.genres):
            label = f"0:{cost}:{p} " if j == chosen else ""
            lines.append(f"{label}|a g={g}")
        return lines

    def select_batch(self, bs: BatchState, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty(s.shape[0], dtype=np.intp)
        for i, (ws, si) in enumerate(zip(self._ws, s.tolist(), strict=True)):
            pmf = np.asarray(ws.predict(self._example(si)), dtype=float)
            pmf = pmf / pmf.sum()
            out[i] = int(rng.choice(pmf.size, p=pmf))
            self._pmf[i] = pmf.tolist()
        return out

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> None:
        for i, (ws, si, ai, ri) in enumerate(
            zip(self._ws, s.tolist(), a.tolist(), r.tolist(), strict=True)
        ):
            cost = (HIGH - ri) / (HIGH - LOW)
            ws.learn(self._example(si, ai, cost, self._pmf[i][ai]))
        idx = np.arange(bs.q.shape[0])
        bs.visits[idx, s, a] += 1
        bs.reward_sum[idx, s, a] += r


def peer_learners(genres: Sequence[str]) -> dict[str, object]:
    """The peers that can run here, by name."""
    peers: dict[str, object] = {"beta-thompson": BetaThompson()}
    if vw_available():
        for name, explore in (("vw-squarecb", "--squarecb"), ("vw-bag5", "--bag 5")):
            peers[name] = VowpalWabbit(name, f"{VW_BASE} {explore} {VW_INTERACTION}", genres)
    return peers
