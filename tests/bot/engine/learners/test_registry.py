"""The learner registry and what every learner promises (``bot.engine.learners``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bot.engine.batch_training import train_batch
from bot.engine.learners import (
    DEFAULT_LEARNER,
    LEARNERS,
    DynaLearner,
    DynaParams,
    SeedLearner,
    SeedParams,
    make_learner,
    takes_community_prior,
)
from bot.engine.listeners import resolve_user
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.training import run_chain

G = DEFAULT_GENRES
POP, ROCK, JAZZ = 0, 1, 2


def test_dyna_is_registered_and_the_default() -> None:
    assert DEFAULT_LEARNER == "dyna"
    assert isinstance(make_learner(), DynaLearner)
    assert isinstance(make_learner("seed"), SeedLearner)


def test_unknown_learner_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown learner") as err:
        make_learner("nope")
    for name in LEARNERS:
        assert name in str(err.value)
    assert make_learner("SEED").name == "seed"


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_is_built_the_same_way(name: str) -> None:
    """``cls(params, *, rewards)``, with the parameter class the learner declares."""
    cls = LEARNERS[name]
    params = cls.params_type(gamma=0.5)
    learner = cls(params, rewards=(-1.0, 2.0))
    assert learner.name == name
    assert learner.params is params
    assert make_learner(name, params, rewards=(-1.0, 2.0)).params == params


def test_each_learner_shows_only_its_own_settings() -> None:
    """dyna has no α and no ε schedule, so neither is one of its settings."""
    seed = {f.name for f in dataclasses.fields(SeedParams)}
    dyna = {f.name for f in dataclasses.fields(DynaParams)}
    assert seed == {"alpha", "gamma", "epsilon", "epsilon_decay", "epsilon_min"}
    assert not dyna & {"alpha", "epsilon", "epsilon_decay", "epsilon_min"}
    assert set(SeedParams().as_dict()) == seed


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_declares_its_capabilities(name: str) -> None:
    """The flags the service and the simulators read are explicit attributes (no
    getattr fallbacks): the reward range it was built for, whether it takes a community
    prior, and propensities that are a distribution over the genres."""
    learner = make_learner(name, rewards=(-2.0, 3.0))
    assert learner.reward_range == (-2.0, 3.0)
    assert takes_community_prior(learner) is (name == "dyna")
    p = learner.selection_probabilities(learner.initial_state(len(G)), 0, np.random.default_rng(0))
    assert p.shape == (len(G),)
    assert np.all(p > 0)
    assert p.sum() == pytest.approx(1.0)


def test_a_learner_rejects_another_learners_params() -> None:
    with pytest.raises(TypeError, match="DynaParams"):
        make_learner("dyna", SeedParams(alpha=0.5))
    with pytest.raises(TypeError, match="SeedParams"):
        make_learner("seed", DynaParams())


def test_seed_still_reproduces_the_decks_worked_example() -> None:
    learner = make_learner("seed", SeedParams())
    state = learner.initial_state(5)
    state.q[ROCK, POP] = 1.0
    state.q[POP, JAZZ] = 0.2  # max Q(Pop, ·) = 0.2
    td = learner.update(state, ROCK, POP, 10.0, POP)
    assert state.q[ROCK, POP] == pytest.approx(1.918)
    assert td == pytest.approx(10 + 0.9 * 0.2 - 1.0)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_each_learner_is_reproducible_by_seed_single(name: str) -> None:
    user = resolve_user("pop_lover")
    runs = [run_chain(make_learner(name), user, 60, np.random.default_rng(5)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].actions, runs[1].actions)
    np.testing.assert_array_equal(runs[0].state.q, runs[1].state.q)
    other = run_chain(make_learner(name), user, 60, np.random.default_rng(6))
    assert not np.array_equal(runs[0].actions, other.actions)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_each_learner_is_reproducible_by_seed_batch(name: str) -> None:
    probs = resolve_user("rock_fan").reward_probs(G)
    logs = [train_batch(make_learner(name), probs, 16, 40, np.random.default_rng(9)) for _ in "ab"]
    np.testing.assert_array_equal(logs[0].actions, logs[1].actions)
    np.testing.assert_array_equal(logs[0].state.q, logs[1].state.q)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_adapt_keeps_every_count_under_its_genre_name(name: str) -> None:
    """Reordered, renamed in case, one removed and one added: counts follow the names."""
    learner = make_learner(name)
    log = run_chain(learner, resolve_user("jazz_enthusiast"), 200, np.random.default_rng(1))
    old = log.state
    new_genres = ("hiphop", "Jazz", "Metal", "Pop", "Rock")  # Classical removed
    got = learner.adapt(old.copy(), G, new_genres)
    assert got.q.shape == (5, 5)
    for i, s in enumerate(new_genres):
        for j, a in enumerate(new_genres):
            if "Metal" in (s, a):
                assert got.visits[i, j] == 0
                assert got.reward_sum[i, j] == 0
                continue
            si, ai = (
                next(k for k, g in enumerate(G) if g.casefold() == x.casefold()) for x in (s, a)
            )
            assert got.visits[i, j] == old.visits[si, ai]
            assert got.reward_sum[i, j] == old.reward_sum[si, ai]
    assert got.epsilon == old.epsilon
