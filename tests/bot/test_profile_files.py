"""Profile files (``bot.profile_files``): TOML and JSON, every rejected file, night_owl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.engine.listeners import REWARDS, ProfileError, sample_reward
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.random_listeners import optimal_policy
from bot.profile_files import load_profile_file, resolve_profile

G = DEFAULT_GENRES
N = 100_000
TOL = 0.01  # ≥ 6 standard errors of a frequency at 100k draws
POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)
NIGHT_OWL = Path(__file__).resolve().parents[2] / "docs" / "profiles" / "night_owl.toml"


def profile_probs(p: float) -> list[float]:
    """The issue's rule, written out independently of the code under test."""
    return [0.2 * (1 - p), 0.3 * (1 - p), 1 - 0.5 * (1 - p)]


def frequencies(rewards: np.ndarray) -> list[float]:
    return [float(np.mean(rewards == r)) for r in REWARDS]


def scalar_draws(probs_sa: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample_reward(probs_sa, rng) for _ in range(N)])


def test_profile_from_toml_file(tmp_path: Path) -> None:
    f = tmp_path / "owl.toml"
    f.write_text('name = "night_owl"\n[preferences]\nJazz = 0.9\nPop = 0.2\n')
    user = resolve_profile(str(f))
    assert user.name == "night_owl"
    assert dict(user.preferences or {}) == {"Jazz": 0.9, "Pop": 0.2}
    freq = frequencies(scalar_draws(user.reward_probs()[POP, JAZZ], seed=4))
    assert freq == pytest.approx(profile_probs(0.9), abs=TOL)


def test_profile_from_json_file_matches_toml(tmp_path: Path) -> None:
    doc = {"name": "night_owl", "preferences": {"Jazz": 0.9, "Pop": 0.2}}
    (tmp_path / "owl.json").write_text(json.dumps(doc))
    (tmp_path / "owl.toml").write_text('name = "night_owl"\n[preferences]\nJazz = 0.9\nPop = 0.2\n')
    a = load_profile_file(tmp_path / "owl.json")
    b = load_profile_file(tmp_path / "owl.toml")
    np.testing.assert_array_equal(a.reward_probs(), b.reward_probs())
    assert a.describe() == b.describe() == {"name": "night_owl", "preferences": doc["preferences"]}


def test_state_dependent_after_table(tmp_path: Path) -> None:
    """Jazz is disliked in general but loved right after Classical."""
    f = tmp_path / "after.toml"
    f.write_text('name = "late"\n[preferences]\nJazz = 0.1\n[after.Classical]\nJazz = 0.95\n')
    user = resolve_profile(str(f))
    probs = user.reward_probs()
    np.testing.assert_allclose(probs[CLASSICAL, JAZZ], profile_probs(0.95))
    np.testing.assert_allclose(probs[POP, JAZZ], profile_probs(0.1))
    after = frequencies(scalar_draws(probs[CLASSICAL, JAZZ], seed=5))
    before = frequencies(scalar_draws(probs[POP, JAZZ], seed=6))
    assert after == pytest.approx(profile_probs(0.95), abs=TOL)
    assert before == pytest.approx(profile_probs(0.1), abs=TOL)
    assert user.describe()["after"] == {"Classical": {"Jazz": 0.95}}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("a.toml", 'name = "x"\n[preferences]\nPolka = 0.5\n', "unknown genre 'Polka'"),
        ("b.toml", 'name = "x"\n[preferences]\nPop = 1.5\n', r"Pop must be in \[0, 1\]"),
        ("c.toml", 'name = "x"\n[preferences]\nPop = -0.1\n', r"Pop must be in \[0, 1\]"),
        ("d.toml", 'name = "x"\n[preferences]\nPop = "high"\n', r"Pop must be in \[0, 1\]"),
        ("e.toml", 'name = "x"\n[preferences]\nPop = true\n', r"Pop must be in \[0, 1\]"),
        ("f.toml", 'name = "x"\n[preferences\nPop = 0.5\n', "malformed"),
        ("g.json", '{"name": "x", "preferences": {"Pop": 0.5}', "malformed"),
        ("h.toml", "[preferences]\nPop = 0.5\n", "missing or empty 'name'"),
        ("i.json", '{"name": "  ", "preferences": {}}', "missing or empty 'name'"),
        ("j.toml", 'name = "x"\n', "missing 'preferences'"),
        ("k.json", "[1, 2]", "top level"),
        ("l.json", '{"name": "x", "preferences": [0.5]}', "table of genre"),
        ("m.toml", 'name = "x"\n[preferences]\n[after.Disco]\nPop = 0.5\n', "unknown genre"),
        ("n.toml", 'name = "x"\n[preferences]\n[after.Pop]\nPop = 7\n', r"must be in \[0, 1\]"),
        ("o.json", '{"name": 3, "preferences": {}}', "name"),
    ],
)
def test_bad_profile_files_name_the_problem(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ProfileError, match=match):
        resolve_profile(path)


def test_unreadable_profile_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        resolve_profile(str(tmp_path / "missing.toml"))
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(ProfileError, match="cannot read"):
        resolve_profile(str(folder))
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ProfileError, match="malformed"):
        resolve_profile(str(binary))


def test_names_still_resolve_and_unknown_ones_mention_files() -> None:
    assert resolve_profile("Pop_Lover").name == "pop_lover"
    with pytest.raises(ProfileError, match=r"unknown user 'nobody'.*\.toml/\.json file"):
        resolve_profile("nobody")


def test_night_owl_file_loads_with_its_state_dependent_taste() -> None:
    owl = load_profile_file(NIGHT_OWL)
    assert owl.name == "night_owl"
    assert owl.after["Classical"]["Jazz"] == 0.95
    assert [G[i] for i in optimal_policy(owl, G)] == ["Pop", "Pop", "Pop", "Jazz", "Pop"]
