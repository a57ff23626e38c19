"""The learner protocols: what the service, the trainers and the CLI may ask of a learner."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from bot.engine.qlearning import AgentParams, BatchState, LearnerState


class Learner(Protocol):
    """How one listener's state is initialised, acted on and updated."""

    name: str
    params: AgentParams

    def initial_state(self, n_genres: int) -> LearnerState:
        """A fresh state for a new listener."""
        ...

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        """The genre index to suggest from current genre ``s``."""
        ...

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        """Apply one rewarded step in place and return the TD error."""
        ...


class BatchLearner(Learner, Protocol):
    """A learner that can also train many independent listeners at once (users axis first).

    Each call advances every user one step; this is what makes ``compare`` and the
    benchmarks fast (numpy over the users axis instead of a Python loop per user).
    """

    def init_batch(self, n_users: int, n_genres: int) -> BatchState: ...

    def select_batch(
        self, bs: BatchState, s: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> np.ndarray | None:
        """Apply one rewarded step per user in place; a learner may return its TD errors."""
        ...
