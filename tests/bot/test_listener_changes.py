"""Listeners whose taste changes (``phases``) and who name their own genre (``switch``):
the file formats and their errors, the phase switch in both trainers, regret against the
phase in force, the recovery figures, and ``compare``/``simulate`` on such files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli.main import main
from bot.engine.batch_training import Stretch, train_batch, train_stretches
from bot.engine.change_metrics import change_summary, score_steps, steps_to_recover
from bot.engine.learners import make_learner
from bot.engine.listeners import (
    ProfileError,
    SimulatedUser,
    profile_from_mapping,
    resolve_user,
)
from bot.engine.qlearning import DEFAULT_GENRES as G
from bot.engine.training import run_chain
from bot.profile_files import load_profile_file

POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)
ROOT = Path(__file__).resolve().parents[2]

SWING_TOML = """
name = "mood_swing"
[[phases]]
steps = 400
[phases.preferences]
HipHop = 0.9
[[phases]]
[phases.preferences]
Classical = 0.9
[phases.after.Jazz]
Pop = 0.95
"""
SWING = {
    "name": "mood_swing",
    "phases": [
        {"steps": 400, "preferences": {"HipHop": 0.9}},
        {"preferences": {"Classical": 0.9}, "after": {"Jazz": {"Pop": 0.95}}},
    ],
}
# Phase one loves everything (+10 always), phase two hates everything: the reward
# stream shows exactly where the change happens.
ALL_LIKED = dict.fromkeys(G, 1.0)
ALL_HATED = dict.fromkeys(G, 0.0)


def two_phase(steps: int, first: dict, second: dict, switch: float = 0.0) -> SimulatedUser:
    doc = {"name": "t", "phases": [{"steps": steps, "preferences": first}, {"preferences": second}]}
    if switch:
        doc["switch"] = switch
    return profile_from_mapping(doc)


# --- file formats -----------------------------------------------------------------------
def test_toml_and_json_phases_are_the_same_listener(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SWING_TOML)
    (tmp_path / "s.json").write_text(json.dumps(SWING))
    a, b = load_profile_file(tmp_path / "s.toml"), load_profile_file(tmp_path / "s.json")
    assert a.describe() == b.describe() == SWING
    assert a.is_phased
    assert [p.steps for p in a.phases] == [400, None]
    second = a.phases[1].taste
    assert second.expected_rewards()[JAZZ, POP] > second.expected_rewards()[ROCK, POP]
    np.testing.assert_array_equal(a.reward_probs(), a.phases[0].taste.reward_probs())


def test_segments_follow_the_phases() -> None:
    user = profile_from_mapping(
        {
            "name": "three",
            "phases": [
                {"steps": 10, "preferences": {"Pop": 1}},
                {"steps": 5, "preferences": {"Rock": 1}},
                {"steps": 3, "preferences": {"Jazz": 1}},  # the last lasts to the end
            ],
        }
    )
    spans = [(s.start, s.stop, s.taste.name) for s in user.segments(40)]
    assert spans == [(0, 10, "three#1"), (10, 15, "three#2"), (15, 40, "three#3")]
    assert [(s.start, s.stop) for s in user.segments(12)] == [(0, 10), (10, 12)]
    assert [(s.start, s.stop) for s in user.segments(10)] == [(0, 10)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"name": "x", "preferences": {"Pop": 1}, "phases": [{"preferences": {}}]},
            "either top-level 'preferences' or 'phases', not both",
        ),
        (
            {"name": "x", "phases": [{"preferences": {"Pop": 1}}, {"preferences": {}}]},
            "phase 1: missing 'steps' (only the last phase may omit it)",
        ),
        (
            {"name": "x", "phases": [{"steps": 0, "preferences": {}}, {"preferences": {}}]},
            "phase 1: 'steps' must be a whole number ≥ 1, got 0",
        ),
        (
            {"name": "x", "phases": [{"steps": 2.5, "preferences": {}}, {"preferences": {}}]},
            "'steps' must be a whole number ≥ 1, got 2.5",
        ),
        ({"name": "x", "phases": [{"steps": 3}]}, "phase 1: missing 'preferences' table"),
        ({"name": "x", "phases": []}, "'phases' must be a non-empty list of tables"),
        ({"name": "x", "phases": "Pop"}, "'phases' must be a non-empty list of tables"),
        (
            {"name": "x", "phases": [{"preferences": {"Pop": 2}}]},
            "phase 1: preferences: preference for Pop must be in [0, 1], got 2",
        ),
        (
            {"name": "x", "phases": [{"preferences": {}, "tempo": 3}]},
            "phase 1: unknown key(s) 'tempo'",
        ),
        (
            {"name": "x", "preferences": {}, "switch": 1.5},
            "'switch' must be a probability in [0, 1], got 1.5",
        ),
        ({"name": "x"}, "missing 'preferences' table (or a 'phases' list)"),
    ],
)
def test_bad_phase_documents_get_one_clear_line(doc: dict, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        profile_from_mapping(doc, source="f.toml")
    text = str(err.value)
    assert message in text
    assert text.startswith("f.toml: ")
    assert "\n" not in text


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_cli_refuses_a_bad_phase_file_with_exit_2(tmp_path: Path, capsys, suffix: str) -> None:
    doc = {"name": "x", "phases": [{"preferences": {"Pop": 1}}, {"preferences": {}}]}
    path = tmp_path / f"bad{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc))
    else:
        path.write_text('name = "x"\n[[phases]]\n[phases.preferences]\nPop = 1\n[[phases]]\n')
    for command in ("simulate", "compare"):
        assert main([command, "--user", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "missing 'steps'" in err
        assert len(err.splitlines()) == 1


# --- the switch of taste in the trainers ------------------------------------------------
def test_batch_trainer_switches_taste_at_the_phase_boundary() -> None:
    user = two_phase(30, ALL_LIKED, ALL_HATED)
    stretches = [
        Stretch(seg.stop - seg.start, seg.taste.reward_probs(G)) for seg in user.segments(80)
    ]
    log = train_stretches(make_learner("dyna"), stretches, 50, np.random.default_rng(1))
    assert log.rewards.shape == (80, 50)
    assert (log.rewards[:30] == 10).all()
    assert (log.rewards[30:] < 10).mean() > 0.4  # P(+10) is 0.5 when everything is hated
    # the chain and the learner's state carry across the change
    np.testing.assert_array_equal(log.states[30], log.actions[29])
    assert log.state.visits.sum() == 80 * 50


@pytest.mark.parametrize("learner", ["seed", "dyna"])
def test_single_chain_switches_taste_at_the_phase_boundary(learner: str) -> None:
    user = two_phase(25, ALL_LIKED, ALL_HATED)
    log = run_chain(make_learner(learner), user, 200, np.random.default_rng(2))
    assert (log.rewards[:25] == 10).all()
    assert (log.rewards[25:] < 10).sum() > 50
    assert log.states[25] == log.actions[24]
    assert log.state.visits.sum() == 200


def test_regret_is_counted_against_the_phase_in_force() -> None:
    user = two_phase(2, {"Pop": 1.0, "Jazz": 0.0}, {"Pop": 0.0, "Jazz": 1.0})
    # expected rewards: preference 1 → 10, preference 0 → 0.2·(−5) + 0.3·1 + 0.5·10 = 4.3
    states = np.array([[ROCK], [POP], [POP], [JAZZ]])
    actions = np.array([[POP], [JAZZ], [POP], [JAZZ]])
    scores = score_steps(states, actions, user, G, gamma=0.9)
    np.testing.assert_allclose(scores.lost[:, 0], [0.0, 5.7, 5.7, 0.0])
    assert scores.optimal[:, 0].tolist() == [True, False, False, True]
    assert scores.changes == (2,)
    summary = change_summary(scores)
    assert summary["regret_after_change"] == pytest.approx(5.7)


def test_steps_to_recover_by_hand() -> None:
    since = 5
    ok = np.zeros((60, 3), dtype=bool)
    ok[since + 4 :, 0] = True  # run 0: optimal from its 5th pick after the change on
    ok[since:, 1] = True  # run 1: from the first pick
    ok[since::2, 2] = True  # run 2: half of its picks, never 16 of 20
    out = steps_to_recover(ok, since)
    # run 0: picks 5..20 after the change are 16 hits in the window ending at pick 20
    assert out.tolist() == [20.0, 20.0, np.inf]


def test_change_summary_median_is_null_when_most_runs_never_recover() -> None:
    user = two_phase(1, {"Pop": 1.0}, {"Jazz": 1.0, "Pop": 0.0})
    steps, runs = 40, 4
    states = np.full((steps, runs), POP)
    actions = np.full((steps, runs), POP)  # keeps suggesting Pop after the change
    actions[1:, 0] = JAZZ  # only run 0 follows
    summary = change_summary(score_steps(states, actions, user, G, gamma=0.9))
    assert summary["never_recovered"] == 0.75
    assert summary["steps_to_recover"] is None


# --- compare and simulate on phased files --------------------------------------------------
def test_compare_json_reports_change_and_tail_figures(tmp_path: Path, capsys) -> None:
    path = tmp_path / "swing.json"
    path.write_text(
        json.dumps(SWING | {"phases": [SWING["phases"][0] | {"steps": 60}, SWING["phases"][1]]})
    )
    argv = ["compare", "--user", str(path), "--user", "pop_lover", "--learner", "dyna"]
    code = main([*argv, "--episodes", "150", "--seeds", "20", "--json"])
    assert code == 0
    phased, plain = json.loads(capsys.readouterr().out)["results"]
    for r in (phased, plain):
        assert 0.0 <= r["stuck_share"] <= 1.0
        assert r["regret_p95"] >= r["regret"] * 0.5
    assert {"regret_after_change", "steps_to_recover", "never_recovered"} <= set(phased)
    assert "regret_after_change" not in plain
    assert 0 < phased["regret_after_change"] <= phased["regret"]
    assert phased["steps_to_recover"] is None or phased["steps_to_recover"] >= 20
    assert phased["best"] == "HipHop→depends on state"


def test_compare_text_shows_the_change_columns(tmp_path: Path, capsys) -> None:
    path = tmp_path / "swing.toml"
    path.write_text(SWING_TOML.replace("steps = 400", "steps = 50"))
    assert main(["compare", "--user", str(path), "--episodes", "120", "--seeds", "5"]) == 0
    out = capsys.readouterr().out
    assert "after change" in out
    assert "recover (never)" in out


# --- naming their own genre ------------------------------------------------------------------
def test_switch_moves_the_listener_to_genres_they_prefer() -> None:
    prefs = {"Pop": 0.8, "Rock": 0.1, "Jazz": 0.05, "Classical": 0.0, "HipHop": 0.05}
    user = SimulatedUser("own", prefs)
    log = train_batch(
        make_learner("seed"), user.reward_probs(G), 400, 50, np.random.default_rng(3),
        switch=1.0, home=user.home_probs(G),
    )  # fmt: skip
    share = np.bincount(log.states.ravel(), minlength=5) / log.states.size
    np.testing.assert_allclose(share, [0.8, 0.1, 0.05, 0.0, 0.05], atol=0.01)


def test_without_switch_the_next_state_is_the_suggestion() -> None:
    user = resolve_user("jazz_enthusiast")
    log = train_batch(make_learner("dyna"), user.reward_probs(G), 30, 40, np.random.default_rng(4))
    np.testing.assert_array_equal(log.states[1:], log.actions[:-1])
    chain = run_chain(make_learner("dyna"), user, 40, np.random.default_rng(4))
    np.testing.assert_array_equal(chain.states[1:], chain.actions[:-1])


def test_switch_in_a_single_chain_visits_unsuggested_genres() -> None:
    owl = load_profile_file(ROOT / "docs" / "profiles" / "night_owl.toml")
    assert owl.switch == 0.2
    log = run_chain(make_learner("dyna"), owl, 600, np.random.default_rng(5))
    moved = (log.states[1:] != log.actions[:-1]).mean()
    assert 0.05 < moved < 0.25  # 0.2 × (1 − chance of naming the suggested genre)
    assert (log.states == CLASSICAL).sum() > 10


def test_readme_night_owl_example_learns_jazz_after_classical(capsys) -> None:
    """The README's command prints Classical→Jazz (it printed Classical→Pop without switch)."""
    assert (
        main(["simulate", "--user", str(ROOT / "docs/profiles/night_owl.toml"), "--seed", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "Classical→Jazz" in out
    readme = (ROOT / "README.md").read_text()
    line = next(ln for ln in out.splitlines() if ln.startswith("policy"))
    assert line in readme


def test_night_owl_learns_jazz_after_classical_on_most_seeds() -> None:
    owl = load_profile_file(ROOT / "docs" / "profiles" / "night_owl.toml")
    stretch = Stretch(1000, owl.reward_probs(G), owl.home_probs(G))
    log = train_stretches(
        make_learner("dyna"), [stretch], 60, np.random.default_rng(6), switch=owl.switch
    )
    greedy = np.argmax(log.state.q, axis=2)
    assert (greedy[:, CLASSICAL] == JAZZ).mean() > 0.65  # 0.82 over 200 seeds
    assert (greedy[:, POP] == POP).mean() > 0.9
