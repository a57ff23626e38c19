"""The seed's simulated listeners, exactly as its notebook defines them, plus file profiles.

A listener is reduced to a reward-probability tensor ``P[s, a, k]``: the chance of
reward ``REWARDS[k]`` when genre ``a`` is suggested while the listener is in genre
``s``. The seed's users ignore ``s``; file profiles may use it (an ``[after.GENRE]``
table), so learners can be tested on tastes that depend on the current genre.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.engine.qlearning import DEFAULT_GENRES

REWARDS = np.array([-5.0, 1.0, 10.0])
"""Skip, brief listen, enjoy: the seed's three reactions."""

GENERIC_PROBS = np.array([0.1, 0.3, 0.6])
DEFAULT_PREFERENCE = 0.5

BUILTIN_PROFILES: dict[str, dict[str, float]] = {
    "pop_lover": {"Pop": 0.9, "Rock": 0.3, "Jazz": 0.1, "Classical": 0.1, "HipHop": 0.4},
    "rock_fan": {"Pop": 0.2, "Rock": 0.95, "Jazz": 0.3, "Classical": 0.2, "HipHop": 0.1},
    "jazz_enthusiast": {"Pop": 0.1, "Rock": 0.2, "Jazz": 0.9, "Classical": 0.7, "HipHop": 0.1},
    "classical_purist": {
        "Pop": 0.05,
        "Rock": 0.1,
        "Jazz": 0.6,
        "Classical": 0.95,
        "HipHop": 0.05,
    },
    "hiphop_head": {"Pop": 0.3, "Rock": 0.1, "Jazz": 0.2, "Classical": 0.05, "HipHop": 0.9},
}


def preference_probs(p: float | np.ndarray) -> np.ndarray:
    """The seed's profile rule: P(−5)=0.2(1−p), P(+1)=0.3(1−p), P(+10)=1−0.5(1−p)."""
    q = 1.0 - np.asarray(p, dtype=np.float64)
    return np.stack([0.2 * q, 0.3 * q, 1.0 - 0.5 * q], axis=-1)


@dataclass(frozen=True)
class SimulatedUser:
    """A listener: generic, or a profile of per-genre preferences in [0, 1].

    ``after`` maps a current genre to preferences that override ``preferences``
    while the listener is in that genre (state-dependent taste).
    """

    name: str
    preferences: Mapping[str, float] | None = None  # None means the generic user
    after: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def is_generic(self) -> bool:
        return self.preferences is None

    def describe(self) -> dict[str, object]:
        """JSON-ready description: the name plus preferences, or "generic"."""
        if self.is_generic:
            return {"name": self.name, "preferences": "generic"}
        out: dict[str, object] = {"name": self.name, "preferences": dict(self.preferences or {})}
        if self.after:
            out["after"] = {k: dict(v) for k, v in self.after.items()}
        return out

    def preference_matrix(self, genres: Sequence[str]) -> np.ndarray:
        """``pref[s, a]``: preference for suggestion ``a`` while in state ``s``."""
        n = len(genres)
        base = np.array([(self.preferences or {}).get(g, DEFAULT_PREFERENCE) for g in genres])
        pref = np.tile(base, (n, 1))
        for s, g in enumerate(genres):
            for a_name, p in self.after.get(g, {}).items():
                if a_name in genres:
                    pref[s, list(genres).index(a_name)] = p
        return pref

    def reward_probs(self, genres: Sequence[str] = DEFAULT_GENRES) -> np.ndarray:
        """``P[s, a, k]``: probability of ``REWARDS[k]`` for suggestion ``a`` in state ``s``."""
        n = len(genres)
        if self.is_generic:
            return np.broadcast_to(GENERIC_PROBS, (n, n, 3)).copy()
        return preference_probs(self.preference_matrix(genres))

    def expected_rewards(self, genres: Sequence[str] = DEFAULT_GENRES) -> np.ndarray:
        """``E[r | s, a]`` as an (n, n) matrix."""
        return self.reward_probs(genres) @ REWARDS


GENERIC = SimulatedUser("generic", None)


def sample_reward(probs_sa: np.ndarray, rng: np.random.Generator) -> float:
    """Draw one reward from a length-3 probability vector."""
    u = rng.random()
    if u < probs_sa[0]:
        return float(REWARDS[0])
    if u < probs_sa[0] + probs_sa[1]:
        return float(REWARDS[1])
    return float(REWARDS[2])


def optimal_q(
    expected: np.ndarray, gamma: float, tol: float = 1e-10, max_iter: int = 100_000
) -> np.ndarray:
    """Q* by value iteration on the known model, where the next state is the action.

    Q*(s, a) = E[r | s, a] + γ · max_a' Q*(a, a').
    """
    q = np.zeros_like(expected, dtype=np.float64)
    for _ in range(max_iter):
        new = expected + gamma * q.max(axis=1)[np.newaxis, :]
        if np.max(np.abs(new - q)) < tol:
            return new
        q = new
    return q


class ProfileError(ValueError):
    """A profile name or file that cannot be used; the message names the problem."""


def _check_prefs(prefs: object, genres: Sequence[str], where: str) -> dict[str, float]:
    if not isinstance(prefs, Mapping):
        raise ProfileError(f"{where} must be a table of genre = preference")
    out: dict[str, float] = {}
    by_fold = {g.casefold(): g for g in genres}
    for key, value in prefs.items():
        genre = by_fold.get(str(key).casefold())
        if genre is None:
            raise ProfileError(f"{where}: unknown genre {key!r}; known: {', '.join(genres)}")
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not 0.0 <= float(value) <= 1.0:
            raise ProfileError(f"{where}: preference for {genre} must be in [0, 1], got {value!r}")
        out[genre] = float(value)
    return out


def profile_from_mapping(
    data: object, genres: Sequence[str] = DEFAULT_GENRES, source: str = "profile"
) -> SimulatedUser:
    """Validate a parsed profile document (TOML or JSON shape) into a user."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: top level must be a table with 'name' and 'preferences'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{source}: missing or empty 'name'")
    if "preferences" not in data:
        raise ProfileError(f"{source}: missing 'preferences' table")
    prefs = _check_prefs(data["preferences"], genres, f"{source}: preferences")
    after_raw = data.get("after", {})
    if not isinstance(after_raw, Mapping):
        raise ProfileError(f"{source}: 'after' must be a table of genre tables")
    after = {}
    for state, table in after_raw.items():
        (state_genre,) = _check_prefs({state: 0.0}, genres, f"{source}: after").keys()
        after[state_genre] = _check_prefs(table, genres, f"{source}: after.{state}")
    return SimulatedUser(name.strip(), prefs, after)


def load_profile_file(path: str | Path, genres: Sequence[str] = DEFAULT_GENRES) -> SimulatedUser:
    """Load a custom profile from a .toml or .json file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read profile file {str(p)!r}: {exc.strerror}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{p.name}: malformed file: {exc}") from None
    return profile_from_mapping(data, genres, source=p.name)


def resolve_user(spec: str, genres: Sequence[str] = DEFAULT_GENRES) -> SimulatedUser:
    """``generic``, a built-in profile name, or a path to a profile file."""
    key = spec.strip()
    if key.lower() == "generic":
        return GENERIC
    if key.lower() in BUILTIN_PROFILES:
        prefs = {g: p for g, p in BUILTIN_PROFILES[key.lower()].items() if g in genres}
        return SimulatedUser(key.lower(), prefs)
    if key.lower().endswith((".toml", ".json")) or Path(key).exists():
        return load_profile_file(key, genres)
    known = ", ".join(["generic", *BUILTIN_PROFILES])
    raise ProfileError(f"unknown user {spec!r}; use one of {known}, or a .toml/.json file")
