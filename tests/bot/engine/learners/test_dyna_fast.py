"""``dyna``'s fast paths are the same process: the fused chain is the generic loop step by
step, the kept scalar model is never stale, and the scalar path picks as the array path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from bot.engine.community import CommunityPrior
from bot.engine.learners.dyna import DynaLearner, scalar
from bot.engine.listeners import Phase, SimulatedUser, resolve_user, sample_reward
from bot.engine.qlearning import DEFAULT_GENRES as G
from bot.engine.qlearning import LearnerState
from bot.engine.training import run_chain
from bot.profile_files import load_profile_file
from storage.schema import decode_state, encode_state

JAZZ = 2
NIGHT_OWL = Path(__file__).resolve().parents[4] / "docs" / "profiles" / "night_owl.toml"


def pop_then_jazz(at: int) -> SimulatedUser:
    """pop_lover who turns jazz_enthusiast at step ``at`` (the detector forgets)."""
    pop, jazz = resolve_user("pop_lover"), resolve_user("jazz_enthusiast")
    return SimulatedUser(
        "pop_then_jazz", pop.preferences, phases=(Phase(pop, at), Phase(jazz, None))
    )


def start_state(kind: str, learner: DynaLearner) -> LearnerState:
    """A new listener, one with a community prior, or a table that is not planned."""
    if kind == "prior":
        return learner.initial_state(5, CommunityPrior(np.linspace(0.2, 0.9, 5), np.full(5, 8.0)))
    state = learner.initial_state(5)
    if kind == "unplanned":
        state.q[...] = np.random.default_rng(5).normal(50.0, 10.0, size=(5, 5))
    return state


def assert_same_state(a: LearnerState, b: LearnerState) -> None:
    assert np.array_equal(a.q, b.q)
    assert np.array_equal(a.visits, b.visits)
    assert np.array_equal(a.reward_sum, b.reward_sum)
    assert a.memory is not None
    assert b.memory is not None
    assert np.array_equal(a.memory, b.memory)
    assert a.epsilon == b.epsilon


@pytest.mark.parametrize("kind", ["fresh", "prior", "unplanned"])
@pytest.mark.parametrize("user", ["pop_lover", "night_owl", "pop_then_jazz"])
def test_the_fused_chain_is_the_generic_loop(user: str, kind: str) -> None:
    """Same seed: the same picks, rewards, ε and exploration flags, bit-identical tables
    and working memory, and the Generator left in the same state."""
    listener = {
        "pop_lover": resolve_user("pop_lover"),
        "night_owl": load_profile_file(NIGHT_OWL),
        "pop_then_jazz": pop_then_jazz(150),
    }[user]
    logs, rngs = [], []
    for fast in (True, False):
        learner = DynaLearner()
        rng = np.random.default_rng(21)
        logs.append(
            run_chain(learner, listener, 400, rng, state=start_state(kind, learner), fast=fast)
        )
        rngs.append(rng.bit_generator.state)
    fused, generic = logs
    for name in ("states", "actions", "rewards", "epsilons", "explored"):
        assert np.array_equal(getattr(fused, name), getattr(generic, name)), name
    assert_same_state(fused.state, generic.state)
    assert rngs[0] == rngs[1]
    if user == "pop_then_jazz" and kind != "prior":  # the detector fired: evidence lost
        assert fused.state.memory is not None
        assert fused.state.memory[0].sum() < fused.state.visits.sum() - 1


def test_a_reloaded_state_reuses_the_kept_model_and_gives_the_same_steps() -> None:
    """The bot loads a listener's state afresh for every step: a copy with the same
    contents finds the kept model, and the steps are those of one unbroken chain."""
    user = resolve_user("pop_lover")
    chain = DynaLearner()
    fused = run_chain(chain, user, 200, np.random.default_rng(3), start=0)
    learner, rng = DynaLearner(), np.random.default_rng(3)
    probs = user.reward_probs(G)
    state, s = learner.initial_state(5), 0
    for t in range(200):
        state = state.copy()  # as loaded from storage
        a = learner.select(state, s, rng)
        r = sample_reward(probs[s, a], rng)
        state = state.copy()
        learner.update(state, s, a, r, a)
        assert a == fused.actions[t]
        s = a
    assert_same_state(state, fused.state)
    assert len(learner._chains) == 1  # every step found the kept model


def test_a_changed_table_is_never_answered_from_the_kept_model() -> None:
    """Another process may have stored a new table: other contents, another model."""
    learner, rng = DynaLearner(), np.random.default_rng(8)
    state = learner.initial_state(5)
    for _ in range(30):
        a = learner.select(state, 0, rng)
        learner.update(state, 0, a, 10.0 if a == 0 else -5.0, a)
    assert learner.select(state, 0, rng) == 0  # Pop, the only liked genre
    state.q[JAZZ] += 1e4  # whatever follows Jazz is now worth far more
    assert all(learner.select(state, 0, rng) == JAZZ for _ in range(20))


@pytest.mark.parametrize("user", ["pop_lover", "night_owl", "pop_then_jazz"])
def test_the_scalar_path_picks_as_the_array_path(user: str) -> None:
    """One listener, same seed: select/update (scalar) and select_batch/update_batch
    (arrays, the learning benchmark's path) make the same picks; their tables agree to
    rounding (the array path solves with numpy.linalg and a series for log Γ)."""
    listener = {
        "pop_lover": resolve_user("pop_lover"),
        "night_owl": load_profile_file(NIGHT_OWL),
        "pop_then_jazz": pop_then_jazz(150),
    }[user]
    steps = 400
    learner, batch = DynaLearner(), DynaLearner()
    state, bs = learner.initial_state(5), batch.init_batch(1, 5)
    rng_s, rng_b = np.random.default_rng(13), np.random.default_rng(13)
    s = 0
    for seg in listener.segments(steps):
        probs = seg.taste.reward_probs(G)
        for _ in range(seg.stop - seg.start):
            a = learner.select(state, s, rng_s)
            a_b = int(batch.select_batch(bs, np.array([s]), rng_b)[0])
            assert a == a_b
            r, r_b = sample_reward(probs[s, a], rng_s), sample_reward(probs[s, a], rng_b)
            assert r == r_b
            learner.update(state, s, a, r, a)
            batch.update_batch(bs, np.array([s]), np.array([a]), np.array([r]), np.array([a]))
            s = a
    np.testing.assert_allclose(state.q, bs.q[0], rtol=0, atol=1e-6)
    assert state.memory is not None
    assert bs.memory is not None
    np.testing.assert_allclose(state.memory, bs.memory[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(state.visits, bs.visits[0])


def test_the_kept_models_stay_behind_when_the_learner_is_sent_to_a_worker() -> None:
    """The bot pickles its learner for every call in the worker process."""
    learner, rng = DynaLearner(), np.random.default_rng(2)
    empty = len(pickle.dumps(learner))
    for i in range(50):  # 50 listeners seen by this process (each reward its own)
        state = learner.initial_state(5)
        a = learner.select(state, 0, rng)
        learner.update(state, 0, a, 10.0 - 0.1 * i, a)
    assert len(learner._chains) == 50
    copy = pickle.loads(pickle.dumps(learner))
    assert len(pickle.dumps(learner)) == empty
    state = learner.initial_state(5)
    assert copy.select(state, 0, np.random.default_rng(4)) == learner.select(
        state, 0, np.random.default_rng(4)
    )


def test_interleaved_listeners_loaded_from_storage_build_their_model_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the bot every select and update gets a state decoded from the database; the
    bytes round trip exactly, so each listener's kept model is found again (a model is
    kept by contents: listeners with equal tables would share one)."""
    builds = []
    build = scalar.Chain.of
    monkeypatch.setattr(scalar.Chain, "of", lambda *a: builds.append(1) or build(*a))
    learner, rng = DynaLearner(), np.random.default_rng(6)
    stored = {u: encode_state(learner.initial_state(5)) for u in range(20)}
    epsilon = dict.fromkeys(stored, 1.0)
    for step in range(10):
        for u in stored:  # the listeners take turns
            state = decode_state(stored[u], 5, epsilon[u])
            a = learner.select(state, step % 5, rng)
            state = decode_state(stored[u], 5, epsilon[u])
            r = 10.0 - 0.1 * u if a == u % 5 else -5.0 + 0.1 * u  # no two alike
            learner.update(state, step % 5, a, r, a)
            stored[u], epsilon[u] = encode_state(state), state.epsilon
    assert len(builds) == 20
