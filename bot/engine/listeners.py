"""The seed's simulated listeners, exactly as its notebook defines them, plus custom ones.

Custom profiles arrive here as parsed mappings (:func:`profile_from_mapping`): the engine
does no I/O, and reading TOML/JSON files is :mod:`bot.profile_files`'s job.
A listener is reduced to a reward-probability tensor ``P[s, a, k]``: the chance of
reward ``REWARDS[k]`` when genre ``a`` is suggested while the listener is in genre
``s``. The seed's users ignore ``s``; file profiles may use it (an ``[after.GENRE]``
table), so learners can be tested on tastes that depend on the current genre.

Two things real members do that the seed's users do not, both optional:

* **Taste that changes** (``phases``): a listener is a list of stationary tastes, each
  lasting ``steps`` suggestions (the last one lasts to the end of the run).
* **Naming their own genre** (``switch``): before a step the listener moves, with that
  probability, to a genre of their own choosing, drawn in proportion to their general
  preferences (as a member does with ``/nowplaying``). With 0, the seed's chain: the
  next state is always the suggestion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
class Phase:
    """One stationary stretch of a changing taste: ``steps`` suggestions long (None: to
    the end of the run, only for the last phase)."""

    taste: SimulatedUser
    steps: int | None = None


@dataclass(frozen=True)
class Segment:
    """Steps ``start`` to ``stop`` (exclusive) of a run, and the taste in force then."""

    start: int
    stop: int
    taste: SimulatedUser


@dataclass(frozen=True)
class SimulatedUser:
    """A listener: generic, or a profile of per-genre preferences in [0, 1].

    ``after`` maps a current genre to preferences that override ``preferences``
    while the listener is in that genre (state-dependent taste). A phased listener
    has ``phases`` (two or more); its ``preferences`` and ``after`` are the first
    phase's, and trainers follow :meth:`segments`. ``switch`` is the probability of
    moving to a genre of one's own choosing before a step (see the module notes).
    """

    name: str
    preferences: Mapping[str, float] | None = None  # None means the generic user
    after: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()
    switch: float = 0.0

    @property
    def is_generic(self) -> bool:
        return self.preferences is None

    @property
    def is_phased(self) -> bool:
        return len(self.phases) > 1

    def segments(self, steps: int) -> list[Segment]:
        """The stationary stretches of a run of ``steps`` steps, in order (at least one).

        Phases beyond the end of the run are left out; the last phase in force lasts to
        the end whatever its ``steps``.
        """
        if not self.is_phased:
            return [Segment(0, steps, self)]
        out: list[Segment] = []
        start = 0
        for i, phase in enumerate(self.phases):
            last = i == len(self.phases) - 1
            stop = steps if last else min(steps, start + int(phase.steps or 0))
            out.append(Segment(start, stop, phase.taste))
            start = stop
            if start >= steps:
                break
        return out

    def home_probs(self, genres: Sequence[str] = DEFAULT_GENRES) -> np.ndarray:
        """Where a listener who names their own genre goes: ∝ general preferences."""
        if self.is_generic:
            return np.full(len(genres), 1.0 / len(genres))
        base = np.array([(self.preferences or {}).get(g, DEFAULT_PREFERENCE) for g in genres])
        total = base.sum()
        return base / total if total > 0 else np.full(len(genres), 1.0 / len(genres))

    def describe(self) -> dict[str, object]:
        """JSON-ready description: the name plus preferences, or "generic"."""
        if self.is_phased:
            phases = []
            for phase in self.phases:
                entry = phase.taste.describe()
                del entry["name"]
                if phase.steps is not None:
                    entry = {"steps": phase.steps, **entry}
                phases.append(entry)
            out: dict[str, object] = {"name": self.name, "phases": phases}
        elif self.is_generic:
            out = {"name": self.name, "preferences": "generic"}
        else:
            out = {"name": self.name, "preferences": dict(self.preferences or {})}
            if self.after:
                out["after"] = {k: dict(v) for k, v in self.after.items()}
        if self.switch:
            out["switch"] = self.switch
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


def best_mean_reward(expected: np.ndarray) -> float:
    """The best long-run mean reward per step any policy can get: a learning curve's ceiling.

    The next state is the suggested genre, so a policy walks the complete graph of genres
    (self-loops included) and its mean reward in the long run is that of the cycle it ends
    on. The best is the maximum mean cycle, by Karp's algorithm: with ``D[k, v]`` the
    best total over walks of exactly ``k`` steps ending in ``v``, it is
    ``max_v min_{k<n} (D[n, v] − D[k, v]) / (n − k)``.
    """
    w = np.asarray(expected, dtype=np.float64)
    n = w.shape[0]
    walks = np.zeros((n + 1, n))
    for k in range(1, n + 1):
        walks[k] = (walks[k - 1][:, np.newaxis] + w).max(axis=0)
    ks = np.arange(n)[:, np.newaxis]
    return float(((walks[n] - walks[:n]) / (n - ks)).min(axis=0).max())


class ProfileError(ValueError):
    """A profile name or file that cannot be used; the message names the problem."""


def check_preferences(prefs: object, genres: Sequence[str], where: str) -> dict[str, float]:
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


def _check_after(after_raw: object, genres: Sequence[str], where: str) -> dict:
    if not isinstance(after_raw, Mapping):
        raise ProfileError(f"{where}: 'after' must be a table of genre tables")
    after = {}
    for state, table in after_raw.items():
        (state_genre,) = check_preferences({state: 0.0}, genres, f"{where}: after").keys()
        after[state_genre] = check_preferences(table, genres, f"{where}: after.{state}")
    return after


def check_switch(data: Mapping, source: str) -> float:
    value = data.get("switch", 0.0)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= 1.0:
        raise ProfileError(f"{source}: 'switch' must be a probability in [0, 1], got {value!r}")
    return float(value)


def _check_steps(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProfileError(f"{where}: 'steps' must be a whole number ≥ 1, got {value!r}")
    return value


def _check_phases(raw: object, name: str, genres: Sequence[str], source: str) -> tuple[Phase, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ProfileError(f"{source}: 'phases' must be a non-empty list of tables")
    phases = []
    for i, entry in enumerate(raw, start=1):
        where = f"{source}: phase {i}"
        if not isinstance(entry, Mapping):
            raise ProfileError(f"{where} must be a table with 'preferences'")
        unknown = sorted(set(entry) - {"steps", "preferences", "after"})
        if unknown:
            raise ProfileError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        if "preferences" not in entry:
            raise ProfileError(f"{where}: missing 'preferences' table")
        steps = None
        if "steps" in entry:
            steps = _check_steps(entry["steps"], where)
        elif i < len(raw):
            raise ProfileError(f"{where}: missing 'steps' (only the last phase may omit it)")
        prefs = check_preferences(entry["preferences"], genres, f"{where}: preferences")
        after = _check_after(entry.get("after", {}), genres, where)
        phases.append(Phase(SimulatedUser(f"{name}#{i}", prefs, after), steps))
    return tuple(phases)


def profile_from_mapping(
    data: object, genres: Sequence[str] = DEFAULT_GENRES, source: str = "profile"
) -> SimulatedUser:
    """Validate a parsed profile document (TOML or JSON shape) into a user.

    Either top-level ``preferences`` (and optional ``after``), or ``phases``: a list of
    tables with ``preferences``, optional ``after`` and ``steps`` (required on every
    phase but the last). ``switch`` (default 0) may accompany either.
    """
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: top level must be a table with 'name' and 'preferences'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{source}: missing or empty 'name'")
    name = name.strip()
    switch = check_switch(data, source)
    if "phases" in data:
        if "preferences" in data or "after" in data:
            raise ProfileError(
                f"{source}: use either top-level 'preferences' or 'phases', not both"
            )
        phases = _check_phases(data["phases"], name, genres, source)
        first = phases[0].taste
        if len(phases) == 1:
            return SimulatedUser(name, first.preferences, first.after, switch=switch)
        return SimulatedUser(name, first.preferences, first.after, phases, switch)
    if "preferences" not in data:
        raise ProfileError(f"{source}: missing 'preferences' table (or a 'phases' list)")
    prefs = check_preferences(data["preferences"], genres, f"{source}: preferences")
    after = _check_after(data.get("after", {}), genres, source)
    return SimulatedUser(name, prefs, after, switch=switch)


def resolve_user(spec: str, genres: Sequence[str] = DEFAULT_GENRES) -> SimulatedUser:
    """``generic`` or a built-in profile name (case-insensitive); files are read outside
    the engine (:mod:`bot.profile_files`), which then calls :func:`profile_from_mapping`."""
    key = spec.strip().lower()
    if key == "generic":
        return GENERIC
    if key in BUILTIN_PROFILES:
        return SimulatedUser(key, {g: p for g, p in BUILTIN_PROFILES[key].items() if g in genres})
    known = ", ".join(["generic", *BUILTIN_PROFILES])
    raise ProfileError(f"unknown user {spec!r}; use one of {known}")
