"""The newcomer's probe: which genre information-directed sampling picks over a server's
taste clusters, when it stops, that it is deterministic, and that the offline servers
play it only for joiners who have clusters."""

from __future__ import annotations

import numpy as np

from bot.engine.community import MemberEvidence, cluster_weights, community_mixture
from bot.engine.learners import DynaLearner
from bot.engine.population import Group, Population
from bot.engine.probing import PROBE_REACTIONS, SURE, information_ratio, probe_pick
from bot.engine.qlearning import DEFAULT_GENRES as G
from bot.engine.server_sim import Newcomers, simulate_servers
from tests.bot.engine.newcomer_counts import HIGH, LOW, own

POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)


def fan(
    top: int, liked: float = 0.95, tried: float = 0.6, bad: int | None = None
) -> MemberEvidence:
    """A member who settled on ``top`` (20 reactions, liked at ``liked``), tried the rest
    4 times each at ``tried``, and ``bad`` at 0."""
    n = np.full(5, 4.0)
    n[top] = 20
    share = np.full(5, tried)
    share[top] = liked
    if bad is not None:
        share[bad] = 0.0
    yes = np.round(share * n)
    return MemberEvidence(n, yes * HIGH + (n - yes) * LOW)


def two_camps():
    members = [fan(JAZZ, bad=HIPHOP)] * 6 + [fan(ROCK, bad=HIPHOP)] * 6
    mixture = community_mixture(members, LOW, HIGH)
    assert mixture is not None
    return mixture


def test_a_newcomer_of_two_even_camps_is_probed_on_a_camps_favourite() -> None:
    """Jazz or Rock tells the camps apart at a low expected regret; HipHop, which both
    camps dislike, is the most expensive and is never the probe."""
    mixture = two_camps()
    pick = probe_pick(mixture, *own({}), LOW, HIGH)
    assert pick in (JAZZ, ROCK)
    delta, gain = information_ratio(mixture, *own({}), LOW, HIGH)
    assert delta[HIPHOP] == delta.max()
    assert (delta[[JAZZ, ROCK]] < delta[[POP, CLASSICAL, HIPHOP]].min()).all()
    assert (gain >= 0).all()


def test_the_probe_follows_the_newcomers_reactions() -> None:
    """After turning Jazz down twice the newcomer is probed on Rock, the other camp's."""
    mixture = two_camps()
    assert probe_pick(mixture, *own({JAZZ: (0, 2)}), LOW, HIGH) == ROCK
    assert probe_pick(mixture, *own({ROCK: (0, 2)}), LOW, HIGH) == JAZZ


def test_no_probe_once_a_cluster_is_sure_or_after_the_first_reactions() -> None:
    mixture = two_camps()
    sure = own({JAZZ: (12, 0), HIPHOP: (0, 3)})  # the jazz camp, down to its dislike
    assert cluster_weights(mixture, *sure, LOW, HIGH)[:-1].max() >= SURE
    assert probe_pick(mixture, *sure, LOW, HIGH) is None
    unsure = own({JAZZ: (1, 1)})
    assert probe_pick(mixture, *unsure, LOW, HIGH) is not None
    late = own({POP: (PROBE_REACTIONS, 0)})
    assert probe_pick(mixture, *late, LOW, HIGH) is None


def test_the_probe_is_a_function_of_the_counts() -> None:
    """Its propensity is 1: the same mixture and counts give the same pick and figures,
    whatever else used numpy's global or any other generator in between."""
    mixture = two_camps()
    counts = own({JAZZ: (2, 1), POP: (1, 0)})
    first = information_ratio(mixture, *counts, LOW, HIGH)
    np.random.default_rng(5).random(100)
    again = information_ratio(mixture, *counts, LOW, HIGH)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    picks = {probe_pick(mixture, *counts, LOW, HIGH) for _ in range(5)}
    assert len(picks) == 1


def test_offline_joiners_without_clusters_keep_the_learners_picks() -> None:
    learner = DynaLearner()
    evidence: list[list[MemberEvidence]] = [[], [fan(JAZZ)] * 4]
    joiners = Newcomers(learner, 5, evidence, on=True)
    assert joiners.mixtures[0] is None
    assert joiners.mixtures[1] is not None
    picks = np.array([HIPHOP, HIPHOP])
    probed = joiners.probe(joiners.state, picks)
    assert probed[0] == HIPHOP  # no clusters: the learner's choice stands
    assert probed[1] == probe_pick(joiners.mixtures[1], *own({}), LOW, HIGH)
    assert (picks == HIPHOP).all()  # the learner's array is not written to


def test_the_probe_changes_a_servers_run_only_with_the_community_on() -> None:
    """With the community off no joiner has clusters, so nothing is probed: the run is
    the same as one with the probe removed."""
    population = Population(
        "two",
        (Group("rock", 0.6, {"Rock": 0.9}, 0.05), Group("jazz", 0.4, {"Jazz": 0.9}, 0.05)),
    )

    def run(community: bool):
        return simulate_servers(
            population, DynaLearner(), G, 8, 25, 3, np.random.default_rng(4), community=community
        )

    off = run(False)
    import bot.engine.server_sim as server_sim

    real = server_sim.Newcomers.probe
    server_sim.Newcomers.probe = lambda self, bs, picks: picks  # type: ignore[method-assign]
    try:
        off_unprobed, on_unprobed = run(False), run(True)
    finally:
        server_sim.Newcomers.probe = real  # type: ignore[method-assign]
    np.testing.assert_array_equal(off.regret, off_unprobed.regret)
    on = run(True)
    assert not np.array_equal(on.regret, on_unprobed.regret)  # the probe did play
