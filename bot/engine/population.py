"""A server's population of simulated listeners: groups that share a taste.

A population has a ``name`` and ``groups``; each group has a ``name``, a ``share`` (the
shares sum to 1) and either ``preferences`` plus a ``noise`` (the standard deviation of
Gaussian noise added to each of a member's preferences, clipped to [0, 1]; genres not
named start at 0.5) or ``random = true`` (every preference uniform on [0, 1]). An
optional top-level ``switch`` is given to every listener (see :mod:`listeners`).
This module validates a parsed document; reading the file is the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.listeners import (
    DEFAULT_PREFERENCE,
    ProfileError,
    SimulatedUser,
    check_preferences,
    check_switch,
)
from bot.engine.qlearning import DEFAULT_GENRES

SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Group:
    """Listeners who share a taste: ``preferences`` ± ``noise``, or uniform if ``random``."""

    name: str
    share: float
    preferences: Mapping[str, float]
    noise: float = 0.0
    random: bool = False


@dataclass(frozen=True)
class Population:
    name: str
    groups: tuple[Group, ...]
    switch: float = 0.0

    def draw(
        self, rng: np.random.Generator, genres: Sequence[str] = DEFAULT_GENRES
    ) -> tuple[int, SimulatedUser]:
        """One listener: the index of their group and their own preferences."""
        shares = np.array([g.share for g in self.groups])
        k = int(np.searchsorted(np.cumsum(shares) / shares.sum(), rng.random(), side="right"))
        k = min(k, len(self.groups) - 1)
        group = self.groups[k]
        if group.random:
            prefs = {g: float(rng.random()) for g in genres}
        else:
            base = np.array([group.preferences.get(g, DEFAULT_PREFERENCE) for g in genres])
            noisy = np.clip(base + rng.normal(0.0, group.noise, len(genres)), 0.0, 1.0)
            prefs = {g: float(p) for g, p in zip(genres, noisy, strict=True)}
        return k, SimulatedUser(f"{self.name}/{group.name}", prefs, switch=self.switch)


def _number(value: object, where: str, low: float, high: float | None = None) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number >= low and (high is None or number <= high):
            return number
    bound = f"in [{low:g}, {high:g}]" if high is not None else f"≥ {low:g}"
    raise ProfileError(f"{where} must be a number {bound}, got {value!r}")


def _group(entry: object, genres: Sequence[str], where: str) -> Group:
    if not isinstance(entry, Mapping):
        raise ProfileError(f"{where} must be a table with 'name' and 'share'")
    unknown = sorted(set(entry) - {"name", "share", "preferences", "noise", "random"})
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{where}: missing or empty 'name'")
    if "share" not in entry:
        raise ProfileError(f"{where}: missing 'share'")
    share = _number(entry["share"], f"{where}: 'share'", 0.0, 1.0)
    rand = entry.get("random", False)
    if not isinstance(rand, bool):
        raise ProfileError(f"{where}: 'random' must be true or false, got {rand!r}")
    if rand:
        if "preferences" in entry or "noise" in entry:
            raise ProfileError(f"{where}: a random group has no 'preferences' or 'noise'")
        return Group(name.strip(), share, {}, 0.0, True)
    if "preferences" not in entry:
        raise ProfileError(f"{where}: needs 'preferences' (with 'noise') or random = true")
    prefs = check_preferences(entry["preferences"], genres, f"{where}: preferences")
    noise = _number(entry.get("noise", 0.0), f"{where}: 'noise'", 0.0, 1.0)
    return Group(name.strip(), share, prefs, noise, False)


def population_from_mapping(
    data: object, genres: Sequence[str] = DEFAULT_GENRES, source: str = "population"
) -> Population:
    """Validate a parsed population document (TOML or JSON shape)."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: top level must be a table with 'name' and 'groups'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{source}: missing or empty 'name'")
    raw = data.get("groups")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ProfileError(f"{source}: 'groups' must be a non-empty list of tables")
    groups = tuple(_group(g, genres, f"{source}: group {i}") for i, g in enumerate(raw, 1))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ProfileError(f"{source}: group names must differ, got {names}")
    total = sum(g.share for g in groups)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ProfileError(f"{source}: group shares must sum to 1, got {total:g}")
    return Population(name.strip(), groups, check_switch(data, source))


def random_population(
    rng: np.random.Generator, name: str, genres: Sequence[str] = DEFAULT_GENRES
) -> Population:
    """A generated server: 2 or 3 groups, each liking a different genre best (0.8–0.95,
    the rest 0.05–0.6, noise 0.05–0.15); when there are 3, the smallest is of random taste
    half the time. Shares from a Dirichlet(2, …), none below 0.1, largest first."""
    k = int(rng.integers(2, 4))
    shares = np.sort(np.maximum(rng.dirichlet(np.full(k, 2.0)), 0.1))[::-1]
    shares = shares / shares.sum()
    favourites = rng.permutation(len(genres))[:k]
    groups = []
    for i, (share, fav) in enumerate(zip(shares.tolist(), favourites.tolist(), strict=True)):
        if i == k - 1 and k == 3 and rng.random() < 0.5:
            groups.append(Group(f"g{i}_random", share, {}, 0.0, True))
            continue
        prefs = {g: round(float(rng.uniform(0.05, 0.6)), 2) for g in genres}
        prefs[genres[fav]] = round(float(rng.uniform(0.8, 0.95)), 2)
        noise = round(float(rng.uniform(0.05, 0.15)), 2)
        groups.append(Group(f"g{i}_{genres[fav].lower()}", share, prefs, noise))
    return Population(name, tuple(groups))


def random_populations(
    seed: int, count: int, genres: Sequence[str] = DEFAULT_GENRES
) -> list[Population]:
    """``count`` generated servers from ``seed`` (the benchmark's, and others to check
    that a setting generalises)."""
    rng = np.random.default_rng(seed)
    return [random_population(rng, f"gen{seed}_{i}", genres) for i in range(count)]
