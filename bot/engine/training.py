"""Training a learner against a simulated listener: one unbroken chain, as in the seed.

Two paths compute the same process. The generic one calls the :class:`Learner`
protocol once per step and works with any learner. The seed learner gets a fast path
(:func:`_seed_chain`): the Q-table as nested Python lists, the random numbers drawn
from the Generator in blocks, and a plain-Python loop. Per-step numpy scalar calls
cost microseconds each; plain floats cost nanoseconds, which is the whole speed-up.
Both paths use random tie-breaking, the same ε schedule and next state = action; they
consume the Generator differently, so they agree in distribution, not step by step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.learners import Learner, SeedLearner
from bot.engine.listeners import REWARDS, SimulatedUser, sample_reward
from bot.engine.qlearning import DEFAULT_GENRES, AgentParams, LearnerState

BLOCK = 8192
"""Steps per block of pre-drawn random numbers in the fast path (and per progress call)."""

GENERIC_PROGRESS_EVERY = 1024
"""The generic path is ~10× slower per step, so it reports more often."""

Progress = Callable[[int], None]


@dataclass
class TrainingLog:
    """Per-step logs of one chain (the seed notebook's reward, action and ε lists)."""

    genres: tuple[str, ...]
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    epsilons: np.ndarray
    state: LearnerState
    explored: np.ndarray | None = None
    """Per step, whether the pick was not a greedy genre of the table it was made from.
    The generic path records it (dyna's "exploration" is this); the seed's fast path, whose
    exploration is its ε, leaves it None."""

    @property
    def mean_reward(self) -> float:
        return float(self.rewards.mean()) if self.rewards.size else 0.0

    @property
    def mean_reward_last_100(self) -> float:
        return float(self.rewards[-100:].mean()) if self.rewards.size else 0.0


def has_fast_path(learner: Learner) -> bool:
    """Only the exact seed learner: a subclass may override select/update."""
    return type(learner) is SeedLearner


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
        if fast and has_fast_path(learner) and user.switch == 0.0:
            log = _seed_chain(learner.params, st, probs, s, steps, rng, genres, part)
        else:
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


def _seed_chain(
    params: AgentParams,
    st: LearnerState,
    probs: np.ndarray,
    s: int,
    episodes: int,
    rng: np.random.Generator,
    genres: tuple[str, ...],
    progress: Progress,
) -> TrainingLog:
    """The seed learner's chain in plain Python (same process as the generic path).

    Per step, three uniforms: ``u`` decides explore vs exploit; ``v`` picks the random
    genre when exploring, or the winner among tied best genres when exploiting (only
    one of the two happens, so one draw serves both); ``w`` draws the reward.
    ``visits`` and ``reward_sum`` are filled from the logs after the loop.
    """
    n = probs.shape[0]
    q = st.q.tolist()
    cut0 = probs[:, :, 0].tolist()
    cut1 = (probs[:, :, 0] + probs[:, :, 1]).tolist()
    r_skip, r_brief, r_enjoy = (float(x) for x in REWARDS)
    alpha, gamma = float(params.alpha), float(params.gamma)
    decay, floor = float(params.epsilon_decay), float(params.epsilon_min)
    eps = float(st.epsilon)
    start = s
    actions: list[int] = []
    rewards: list[float] = []
    epsilons: list[float] = []
    done = 0
    while done < episodes:
        size = min(BLOCK, episodes - done)
        us, vs, ws = rng.random((3, size)).tolist()
        for u, v, w in zip(us, vs, ws, strict=True):
            row = q[s]
            if u < eps:
                a = int(v * n)
            else:
                best = max(row)
                if row.count(best) == 1:
                    a = row.index(best)
                else:
                    ties = [j for j in range(n) if row[j] == best]
                    a = ties[int(v * len(ties))]
            c0 = cut0[s][a]
            r = r_skip if w < c0 else (r_brief if w < cut1[s][a] else r_enjoy)
            row[a] += alpha * (r + gamma * max(q[a]) - row[a])
            actions.append(a)
            rewards.append(r)
            epsilons.append(eps)
            eps = eps * decay
            if eps < floor:
                eps = floor
            s = a
        done += size
        progress(done)
    if episodes == 0:
        progress(0)
    return _finish_log(st, q, eps, start, actions, rewards, epsilons, genres)


def _finish_log(
    st: LearnerState,
    q: list[list[float]],
    eps: float,
    start: int,
    actions: list[int],
    rewards: list[float],
    epsilons: list[float],
    genres: tuple[str, ...],
) -> TrainingLog:
    """Write the list-based results back into ``st`` and build the numpy logs."""
    n = len(genres)
    acts = np.array(actions, dtype=np.int64)
    rews = np.array(rewards, dtype=np.float64)
    states = np.empty_like(acts)
    if acts.size:
        states[0] = start
        states[1:] = acts[:-1]
    st.q[...] = np.array(q, dtype=np.float64).reshape(n, n)
    st.epsilon = eps
    cells = states * n + acts
    st.visits += np.bincount(cells, minlength=n * n).reshape(n, n).astype(st.visits.dtype)
    st.reward_sum += np.bincount(cells, weights=rews, minlength=n * n).reshape(n, n)
    return TrainingLog(genres, states, acts, rews, np.array(epsilons, dtype=np.float64), st)
