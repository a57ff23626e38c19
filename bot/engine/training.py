"""Training a learner against a simulated listener: one unbroken chain, as in the seed.

The loop calls the :class:`Learner` protocol once per step and works with any learner.
A learner may bring its own fused loop for the same process (``run_chain_fast``, the
:class:`~bot.engine.learners.base.FastChain` protocol; the seed learner has one), which
is used unless ``fast=False`` or the listener switches genres by themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.engine.learners.base import FastChain, Learner, Progress
from bot.engine.listeners import SimulatedUser, sample_reward
from bot.engine.logs import TrainingLog
from bot.engine.qlearning import DEFAULT_GENRES, LearnerState

__all__ = ["GENERIC_PROGRESS_EVERY", "TrainingLog", "run_chain"]

GENERIC_PROGRESS_EVERY = 1024
"""Steps between progress calls of the generic loop."""


def run_chain(
    learner: Learner,
    user: SimulatedUser,
    episodes: int,
    rng: np.random.Generator,
    genres: Sequence[str] = DEFAULT_GENRES,
    state: LearnerState | None = None,
    start: int | None = None,
    *,
    fast: bool = True,
    progress: Progress | None = None,
) -> TrainingLog:
    """Run ``episodes`` steps from a random start genre (or ``start``), mutating ``state``.

    The next state is always the genre just suggested, whatever the reward.
    ``fast=False`` forces the generic per-step path (used to check the two agree).
    ``progress(done)`` is called every few thousand steps and at the end; it never
    touches the Generator, so a run is the same with or without it.
    """
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    genres = tuple(genres)
    n = len(genres)
    st = state if state is not None else learner.initial_state(n)
    s = int(rng.integers(n)) if start is None else int(start)
    report = progress or _no_progress
    logs = []
    for seg in user.segments(episodes):
        probs = seg.taste.reward_probs(genres)
        steps = seg.stop - seg.start
        part = _offset(report, seg.start)
        log = None
        if fast and isinstance(learner, FastChain) and user.switch == 0.0:
            log = learner.run_chain_fast(st, probs, s, steps, rng, genres, part)
        if log is None:
            home = seg.taste.home_probs(genres)
            log = _generic_chain(learner, st, probs, s, steps, rng, genres, part, user.switch, home)
        logs.append(log)
        if steps:
            s = int(log.actions[-1])
    return logs[0] if len(logs) == 1 else _join(logs)


def _offset(progress: Progress, start: int) -> Progress:
    """Progress of a later segment, counted from the start of the run."""
    if start == 0:
        return progress
    return lambda done: progress(start + done)


def _join(logs: list[TrainingLog]) -> TrainingLog:
    """One log from the logs of consecutive segments (they share the final state)."""

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(lg, name) for lg in logs])

    explored = [lg.explored for lg in logs if lg.explored is not None]
    return TrainingLog(
        logs[0].genres,
        joined("states"),
        joined("actions"),
        joined("rewards"),
        joined("epsilons"),
        logs[-1].state,
        np.concatenate(explored) if len(explored) == len(logs) else None,
    )


def _no_progress(done: int) -> None:
    """Default progress callback: nothing to show."""


def _generic_chain(
    learner: Learner,
    st: LearnerState,
    probs: np.ndarray,
    s: int,
    episodes: int,
    rng: np.random.Generator,
    genres: tuple[str, ...],
    progress: Progress,
    switch: float = 0.0,
    home: np.ndarray | None = None,
) -> TrainingLog:
    """Any learner, one protocol call per step; with ``switch`` > 0 the listener may
    first move to a genre of their own, drawn from ``home``."""
    states = np.empty(episodes, dtype=np.int64)
    actions = np.empty(episodes, dtype=np.int64)
    rewards = np.empty(episodes, dtype=np.float64)
    epsilons = np.empty(episodes, dtype=np.float64)
    cum = None if home is None else np.cumsum(home) / np.sum(home)
    explored = np.empty(episodes, dtype=bool)
    for t in range(episodes):
        if switch > 0.0 and rng.random() < switch:
            u = rng.random()
            if cum is None:
                s = min(int(u * len(genres)), len(genres) - 1)
            else:
                s = min(int(np.searchsorted(cum, u, side="right")), len(genres) - 1)
        a = learner.select(st, s, rng)
        r = sample_reward(probs[s, a], rng)
        states[t], actions[t], rewards[t], epsilons[t] = s, a, r, st.epsilon
        row = st.q[s]
        explored[t] = row[a] < row.max()
        learner.update(st, s, a, r, a)
        s = a
        if (t + 1) % GENERIC_PROGRESS_EVERY == 0:
            progress(t + 1)
    progress(episodes)
    return TrainingLog(genres, states, actions, rewards, epsilons, st, explored)
