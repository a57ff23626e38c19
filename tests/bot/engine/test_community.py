"""The community prior (empirical Bayes from members' evidence), population files and
their errors, and the simulated servers of ``compare --population``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli.main import main
from bot.engine.community import (
    MAX_STRENGTH,
    MemberEvidence,
    community_prior,
    evidence_from_log,
)
from bot.engine.learners import DynaLearner
from bot.engine.learners.dyna.forgetting import REWARD_SUM, VISITS
from bot.engine.listeners import ProfileError
from bot.engine.population import population_from_mapping
from bot.engine.qlearning import DEFAULT_GENRES as G

ROOT = Path(__file__).resolve().parents[3]
LOW, HIGH = -5.0, 10.0
POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)


def members(shares_by_member: list[list[float]], reactions: int = 20) -> list[MemberEvidence]:
    """Members with ``reactions`` binary reactions per genre, liked at the given shares."""
    out = []
    for shares in shares_by_member:
        n = np.full(5, float(reactions))
        liked = np.round(np.array(shares) * reactions)
        out.append(MemberEvidence(n, liked * HIGH + (n - liked) * LOW))
    return out


# --- empirical Bayes ----------------------------------------------------------------------
def test_agreeing_members_give_a_strong_prior_at_their_mean() -> None:
    same = members([[0.9, 0.2, 0.5, 0.5, 0.3]] * 8)
    prior = community_prior(same, LOW, HIGH, max_strength=50)
    assert prior is not None
    np.testing.assert_allclose(prior.mean, [0.9, 0.2, 0.5, 0.5, 0.3], atol=1e-3)
    assert (prior.strength >= 50 - 1e-9).all()  # no spread beyond sampling: the cap


def test_disagreeing_members_give_a_weak_prior() -> None:
    rng = np.random.default_rng(0)
    split = members(
        [[0.95, *rng.random(4)] if i % 2 else [0.05, *rng.random(4)] for i in range(10)]
    )
    prior = community_prior(split, LOW, HIGH, max_strength=50)
    assert prior is not None
    assert prior.strength[POP] < 2  # half love Pop, half hate it
    agree = community_prior(members([[0.9, 0.2, 0.5, 0.5, 0.3]] * 10), LOW, HIGH, max_strength=50)
    assert agree is not None
    assert prior.strength[POP] < 0.1 * agree.strength[POP]


def test_no_prior_without_enough_members_or_evidence() -> None:
    assert community_prior([], LOW, HIGH) is None
    assert community_prior(members([[0.9] * 5] * 2), LOW, HIGH) is None  # < 3 raters
    quiet = [MemberEvidence(np.zeros(5), np.zeros(5)) for _ in range(5)]
    assert community_prior(quiet, LOW, HIGH) is None


def test_strength_is_capped_and_never_above_the_evidence() -> None:
    prior = community_prior(members([[0.8] * 5] * 6), LOW, HIGH)
    assert prior is not None
    assert (prior.strength <= MAX_STRENGTH).all()
    tiny = community_prior(members([[1.0] * 5] * 3, reactions=1), LOW, HIGH, max_strength=50)
    assert tiny is not None
    assert (tiny.strength <= 3).all()


def test_evidence_from_a_log_counts_each_runs_reactions() -> None:
    actions = np.array([[POP, JAZZ], [POP, JAZZ], [ROCK, JAZZ]])
    rewards = np.array([[10.0, -5.0], [1.0, -5.0], [10.0, 10.0]])
    one, two = evidence_from_log(actions, rewards, 5)
    assert one.reactions.tolist() == [2, 1, 0, 0, 0]
    assert one.reward_sum.tolist() == [11.0, 10.0, 0, 0, 0]
    assert two.reactions.tolist() == [0, 0, 3, 0, 0]
    assert two.reward_sum[JAZZ] == 0.0


def test_a_newcomer_starts_from_the_prior_but_with_no_history_of_their_own() -> None:
    prior = community_prior(members([[0.95, 0.1, 0.1, 0.1, 0.1]] * 10), LOW, HIGH)
    assert prior is not None
    learner = DynaLearner()
    state = learner.initial_state(5, prior=prior)
    assert not state.visits.any()
    assert not state.reward_sum.any()
    assert state.memory is not None
    assert state.memory[VISITS].sum() == pytest.approx(prior.strength.sum())
    assert (state.q[:, POP] > state.q[:, ROCK]).all()  # leans towards what the server likes
    fresh = learner.initial_state(5)
    assert np.ptp(fresh.q[:, POP] - fresh.q[:, ROCK]) == pytest.approx(0.0)
    # batch newcomers: the same table
    bs = learner.init_batch(2, 5, priors=[prior, None])
    np.testing.assert_allclose(bs.q[0], state.q)
    np.testing.assert_allclose(bs.q[1], fresh.q)
    assert bs.memory is not None
    np.testing.assert_allclose(bs.memory[0, REWARD_SUM], state.memory[REWARD_SUM])


# --- population files ---------------------------------------------------------------------
METAL = {
    "name": "metal_server",
    "groups": [
        {"name": "metalheads", "share": 0.7, "noise": 0.1, "preferences": {"Rock": 0.9}},
        {"name": "others", "share": 0.3, "random": True},
    ],
}


def test_population_files_in_the_docs_load() -> None:
    for path in sorted((ROOT / "docs" / "populations").glob("*.toml")):
        import tomllib

        population = population_from_mapping(tomllib.loads(path.read_text()), G, path.name)
        assert abs(sum(g.share for g in population.groups) - 1) < 1e-9
        assert 2 <= len(population.groups) <= 3


def test_drawn_listeners_follow_the_groups() -> None:
    population = population_from_mapping(METAL)
    rng = np.random.default_rng(1)
    draws = [population.draw(rng) for _ in range(2000)]
    share = np.mean([k == 0 for k, _ in draws])
    assert share == pytest.approx(0.7, abs=0.04)
    rock = np.array([u.preferences["Rock"] for k, u in draws if k == 0])
    assert rock.mean() == pytest.approx(0.9, abs=0.02)
    assert rock.std() == pytest.approx(0.1, abs=0.03)  # a little under: clipped at 1
    assert rock.max() <= 1.0
    pop = np.array([u.preferences["Pop"] for k, u in draws if k == 0])
    assert pop.mean() == pytest.approx(0.5, abs=0.02)  # unnamed genres start at 0.5
    others = np.array([u.preferences["Rock"] for k, u in draws if k == 1])
    assert others.std() == pytest.approx(np.sqrt(1 / 12), abs=0.03)  # uniform


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"groups": []}, "'groups' must be a non-empty list of tables"),
        ({"name": ""}, "missing or empty 'name'"),
        (
            {"groups": [{"name": "a", "share": 0.5, "random": True}]},
            "group shares must sum to 1, got 0.5",
        ),
        (
            {"groups": [{"name": "a", "share": 1.0}]},
            "group 1: needs 'preferences' (with 'noise') or random = true",
        ),
        (
            {"groups": [{"name": "a", "share": 1.0, "random": True, "noise": 0.1}]},
            "a random group has no 'preferences' or 'noise'",
        ),
        (
            {"groups": [{"name": "a", "share": 1.0, "preferences": {}, "noise": -1}]},
            "'noise' must be a number in [0, 1], got -1",
        ),
        ({"groups": [{"name": "a", "random": True}]}, "group 1: missing 'share'"),
        (
            {"groups": [{"name": "a", "share": 1.0, "preferences": {"Polka": 1}}]},
            "unknown genre 'Polka'",
        ),
    ],
)
def test_bad_population_documents_get_one_clear_line(change: dict, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        population_from_mapping(METAL | change, G, "p.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_refuses_bad_population_input_with_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps(METAL | {"groups": [{"name": "a", "share": 0.2, "random": True}]}))
    broken = tmp_path / "q.toml"
    broken.write_text("name = [")
    for argv in (
        ["compare", "--population", str(bad)],
        ["compare", "--population", str(broken)],
        ["compare", "--population", str(tmp_path / "missing.toml")],
        ["compare", "--listeners", "5"],
        ["compare", "--population", str(bad), "--user", "pop_lover"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err


# --- simulated servers ----------------------------------------------------------------------
def test_compare_population_json_has_the_issue_fields(tmp_path: Path, capsys) -> None:
    path = tmp_path / "metal.json"
    path.write_text(json.dumps(METAL))
    figures = {}
    for community in ("on", "off"):
        argv = ["compare", "--population", str(path), "--listeners", "12", "--episodes", "30"]
        assert main([*argv, "--seeds", "6", "--community", community, "--json"]) == 0
        figures[community] = json.loads(capsys.readouterr().out)
    on = figures["on"]
    assert {"regret", "regret_20", "neg_rate_first_20", "by_group"} <= set(on)
    assert [g["group"] for g in on["by_group"]] == ["metalheads", "others"]
    assert sum(g["listeners"] for g in on["by_group"]) == 6 * 12
    for g in on["by_group"]:
        assert {"regret", "regret_20", "neg_rate_first_20"} <= set(g)
    # the same listeners and seeds: community on helps the majority from the start
    heads_on, heads_off = on["by_group"][0], figures["off"]["by_group"][0]
    assert heads_on["regret_20"] < heads_off["regret_20"]


def test_compare_population_text(tmp_path: Path, capsys) -> None:
    path = tmp_path / "metal.toml"
    path.write_text((ROOT / "docs" / "populations" / "metal_server.toml").read_text())
    argv = ["compare", "--population", str(path), "--listeners", "4", "--episodes", "10"]
    assert main([*argv, "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "metalheads" in out
    assert "community on" in out
