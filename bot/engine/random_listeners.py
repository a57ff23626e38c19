"""Random listener profiles, some with state-dependent taste, for testing learners.

The built-in profiles are few and easy to tune to, so the benchmark also draws
profiles from a seed. Each profile is rejection-sampled until its optimal policy
has a clear winner in every state: the best genre's Q* must beat the runner-up by
at least ``min_gap`` reward units. Without a gap, "share of steps on the best
genre" measures coin flips between near-equal genres rather than learning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.engine.listeners import Phase, SimulatedUser, optimal_q
from bot.engine.qlearning import DEFAULT_GENRES

DEFAULT_MIN_GAP = 1.0
"""Reward units (≈ 0.18 of preference). jazz_enthusiast, the hardest built-in, has 1.14."""

DEFAULT_GAMMA = 0.9


def policy_gap(user: SimulatedUser, genres: Sequence[str], gamma: float = DEFAULT_GAMMA) -> float:
    """The smallest margin, over states, between the best and second-best Q*."""
    q = np.sort(optimal_q(user.expected_rewards(genres), gamma), axis=1)
    return float((q[:, -1] - q[:, -2]).min())


def optimal_policy(
    user: SimulatedUser, genres: Sequence[str], gamma: float = DEFAULT_GAMMA
) -> np.ndarray:
    """π*(s) as genre indices."""
    return np.argmax(optimal_q(user.expected_rewards(genres), gamma), axis=1)


def _draw_preferences(rng: np.random.Generator, genres: Sequence[str]) -> dict[str, float]:
    return {g: round(float(rng.uniform(0.05, 0.95)), 2) for g in genres}


def _draw_after(
    rng: np.random.Generator, genres: Sequence[str], prefs: dict[str, float]
) -> dict[str, dict[str, float]]:
    """One or two current genres after which another genre becomes the favourite."""
    n = len(genres)
    overall = max(prefs, key=prefs.__getitem__)
    after: dict[str, dict[str, float]] = {}
    for s in rng.choice(n, size=int(rng.integers(1, 3)), replace=False):
        others = [g for g in genres if g != overall]
        fav = others[int(rng.integers(len(others)))]
        after[genres[int(s)]] = {
            fav: round(float(rng.uniform(0.8, 0.98)), 2),
            overall: round(float(rng.uniform(0.05, 0.5)), 2),
        }
    return after


def random_profile(
    rng: np.random.Generator,
    name: str,
    *,
    state_dependent: bool = False,
    genres: Sequence[str] = DEFAULT_GENRES,
    min_gap: float = DEFAULT_MIN_GAP,
    max_tries: int = 10_000,
) -> SimulatedUser:
    """A profile with a clear best genre per state; state-dependent ones have a
    policy that really differs by state (not just a different table)."""
    for _ in range(max_tries):
        prefs = _draw_preferences(rng, genres)
        after = _draw_after(rng, genres, prefs) if state_dependent else {}
        user = SimulatedUser(name, prefs, after)
        if policy_gap(user, genres) < min_gap:
            continue
        if state_dependent and len(set(optimal_policy(user, genres).tolist())) < 2:
            continue
        return user
    raise RuntimeError(f"no profile with gap ≥ {min_gap} in {max_tries} tries")


def random_profiles(
    seed: int,
    count: int = 6,
    *,
    genres: Sequence[str] = DEFAULT_GENRES,
    min_gap: float = DEFAULT_MIN_GAP,
) -> list[SimulatedUser]:
    """``count`` profiles from ``seed``; every other one is state-dependent."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        dep = i % 2 == 1
        name = f"rand{i}{'_after' if dep else ''}"
        out.append(random_profile(rng, name, state_dependent=dep, genres=genres, min_gap=min_gap))
    return out


def random_phased_profiles(
    seed: int,
    count: int = 6,
    *,
    change_at: int = 500,
    genres: Sequence[str] = DEFAULT_GENRES,
    min_gap: float = DEFAULT_MIN_GAP,
    min_moved: float = 0.6,
) -> list[SimulatedUser]:
    """``count`` listeners whose taste changes once, at step ``change_at``: two random
    profiles (every other pair state-dependent) whose optimal policies differ in at least
    ``min_moved`` of the states, so the change really asks for new suggestions."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        dep = i % 2 == 1
        name = f"drift{i}{'_after' if dep else ''}"
        before = random_profile(
            rng, f"{name}#1", state_dependent=dep, genres=genres, min_gap=min_gap
        )
        pi_before = optimal_policy(before, genres)
        for _ in range(1000):
            after = random_profile(
                rng, f"{name}#2", state_dependent=dep, genres=genres, min_gap=min_gap
            )
            if (optimal_policy(after, genres) != pi_before).mean() >= min_moved:
                break
        phases = (Phase(before, change_at), Phase(after))
        out.append(SimulatedUser(name, before.preferences, before.after, phases))
    return out
