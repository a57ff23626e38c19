"""Simulated listeners: reward distributions over 100k draws, built-in and parsed profiles
(state-dependent ones too), value iteration. Profile files: tests/bot/test_profile_files.py."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.batch_training import sample_rewards_batch
from bot.engine.listeners import (
    BUILTIN_PROFILES,
    GENERIC,
    REWARDS,
    ProfileError,
    SimulatedUser,
    optimal_q,
    profile_from_mapping,
    resolve_user,
    sample_reward,
)
from bot.engine.qlearning import DEFAULT_GENRES

N = 100_000
TOL = 0.01  # ≥ 6 standard errors of a frequency at 100k draws
POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)


def profile_probs(p: float) -> list[float]:
    """The issue's rule, written out independently of the code under test."""
    return [0.2 * (1 - p), 0.3 * (1 - p), 1 - 0.5 * (1 - p)]


def frequencies(rewards: np.ndarray) -> list[float]:
    return [float(np.mean(rewards == r)) for r in REWARDS]


def scalar_draws(probs_sa: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample_reward(probs_sa, rng) for _ in range(N)])


def test_reward_values_are_the_seeds() -> None:
    assert REWARDS.tolist() == [-5.0, 1.0, 10.0]


def test_generic_user_distribution_for_every_genre() -> None:
    probs = GENERIC.reward_probs(DEFAULT_GENRES)
    assert probs.shape == (5, 5, 3)
    np.testing.assert_allclose(probs, np.broadcast_to([0.1, 0.3, 0.6], (5, 5, 3)))
    freq = frequencies(scalar_draws(probs[ROCK, JAZZ], seed=1))
    assert freq == pytest.approx([0.1, 0.3, 0.6], abs=TOL)
    np.testing.assert_allclose(GENERIC.expected_rewards(), 5.8)


@pytest.mark.parametrize(("genre", "p"), [(POP, 0.9), (JAZZ, 0.1), (HIPHOP, 0.4)])
def test_pop_lover_distribution(genre: int, p: float) -> None:
    user = resolve_user("pop_lover")
    probs = user.reward_probs()
    np.testing.assert_allclose(probs[CLASSICAL, genre], profile_probs(p))
    freq = frequencies(scalar_draws(probs[CLASSICAL, genre], seed=genre))
    assert freq == pytest.approx(profile_probs(p), abs=TOL)


def test_batched_sampler_matches_the_distribution() -> None:
    rng = np.random.default_rng(3)
    p = np.array([profile_probs(0.1), profile_probs(0.95)])
    rows = np.repeat(p, N, axis=0)
    rewards = sample_rewards_batch(rows, rng)
    assert frequencies(rewards[:N]) == pytest.approx(profile_probs(0.1), abs=TOL)
    assert frequencies(rewards[N:]) == pytest.approx(profile_probs(0.95), abs=TOL)


def test_builtin_profiles_are_the_guides() -> None:
    assert BUILTIN_PROFILES["pop_lover"] == {
        "Pop": 0.9,
        "Rock": 0.3,
        "Jazz": 0.1,
        "Classical": 0.1,
        "HipHop": 0.4,
    }
    assert set(BUILTIN_PROFILES) == {
        "pop_lover",
        "rock_fan",
        "jazz_enthusiast",
        "classical_purist",
        "hiphop_head",
    }
    expected = resolve_user("pop_lover").expected_rewards()[0]
    assert expected == pytest.approx([9.43, 6.01, 4.87, 4.87, 6.58])


def test_unnamed_genre_defaults_to_half() -> None:
    user = SimulatedUser("partial", {"Pop": 1.0})
    probs = user.reward_probs()
    np.testing.assert_allclose(probs[0, ROCK], profile_probs(0.5))
    np.testing.assert_allclose(probs[0, POP], [0.0, 0.0, 1.0])


def test_resolve_user_names() -> None:
    assert resolve_user("generic") is GENERIC
    assert resolve_user(" Pop_Lover ").name == "pop_lover"
    with pytest.raises(ProfileError, match="unknown user 'nobody'"):
        resolve_user("nobody")


def test_value_iteration_gives_the_closed_form_optimum() -> None:
    """Next state = action, so V* = max_a E[r|a] / (1 − γ) for state-free tastes."""
    expected = resolve_user("pop_lover").expected_rewards()
    q_star = optimal_q(expected, 0.9)
    v_star = expected[0].max() / (1 - 0.9)
    np.testing.assert_allclose(q_star.max(axis=1), v_star, rtol=1e-8)
    np.testing.assert_allclose(q_star, expected + 0.9 * v_star, rtol=1e-8)
    assert v_star == pytest.approx(94.3)


def test_value_iteration_with_state_dependent_taste() -> None:
    """Two genres: A pays 1 anywhere, B pays 10 only right after A. Best: alternate."""
    expected = np.array([[1.0, 10.0], [1.0, 0.0]])
    q = optimal_q(expected, 0.5)
    # V(A) = 10 + 0.5 V(B), V(B) = 1 + 0.5 V(A)  →  V(A) = 14, V(B) = 8
    np.testing.assert_allclose(q.max(axis=1), [14.0, 8.0], rtol=1e-8)
    assert q.argmax(axis=1).tolist() == [1, 0]


def test_a_parsed_profile_with_state_dependent_taste() -> None:
    """Jazz is disliked in general but loved right after Classical; names fold case."""
    doc = {"name": " late ", "preferences": {"jazz": 0.1}, "after": {"classical": {"Jazz": 0.95}}}
    user = profile_from_mapping(doc)
    assert user.name == "late"
    probs = user.reward_probs()
    np.testing.assert_allclose(probs[CLASSICAL, JAZZ], profile_probs(0.95))
    np.testing.assert_allclose(probs[POP, JAZZ], profile_probs(0.1))
    assert user.describe()["after"] == {"Classical": {"Jazz": 0.95}}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"name": "x", "preferences": {"Polka": 0.5}}, "unknown genre 'Polka'"),
        ({"name": "x", "preferences": {"Pop": 1.5}}, r"Pop must be in \[0, 1\]"),
        ({"name": "x", "preferences": {"Pop": True}}, r"Pop must be in \[0, 1\]"),
        ({"preferences": {}}, "missing or empty 'name'"),
        ({"name": "x"}, "missing 'preferences'"),
        ([1, 2], "top level"),
        ({"name": "x", "preferences": {}, "after": {"Disco": {}}}, "unknown genre"),
    ],
)
def test_a_parsed_profile_is_validated(doc: object, match: str) -> None:
    with pytest.raises(ProfileError, match=match):
        profile_from_mapping(doc, source="test")


def test_the_engine_reads_no_files(tmp_path) -> None:
    """A path is not a user name here: files are read by bot.profile_files."""
    f = tmp_path / "owl.toml"
    f.write_text('name = "night_owl"\n[preferences]\nJazz = 0.9\n')
    with pytest.raises(ProfileError, match="unknown user"):
        resolve_user(str(f))
