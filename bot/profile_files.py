"""Custom listener profiles from TOML or JSON files, for ``simulate`` and ``compare``.

The engine validates a parsed profile (:func:`bot.engine.listeners.profile_from_mapping`);
reading the file is I/O, so it lives here, outside the engine.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path

from bot.engine.listeners import ProfileError, SimulatedUser, profile_from_mapping, resolve_user
from bot.engine.qlearning import DEFAULT_GENRES

SUFFIXES = (".toml", ".json")


def load_profile_file(path: str | Path, genres: Sequence[str] = DEFAULT_GENRES) -> SimulatedUser:
    """Load a custom profile from a .toml or .json file; ProfileError names the problem."""
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


def resolve_profile(spec: str, genres: Sequence[str] = DEFAULT_GENRES) -> SimulatedUser:
    """``generic``, a built-in profile name, or a path to a profile file."""
    key = spec.strip()
    if key.lower().endswith(SUFFIXES) or Path(key).exists():
        return load_profile_file(key, genres)
    try:
        return resolve_user(key, genres)
    except ProfileError as exc:
        raise ProfileError(f"{exc}, or a .toml/.json file") from None
