"""The mixture prior: a server's taste clusters, a newcomer's weights on them as their own
reactions arrive, the lift-only rule, the learner's swap of pseudo-reactions, the privacy
floor (no cluster of fewer than 3 members), and generated populations."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.community import (
    FRESH_WEIGHT,
    LIFT_ABOVE,
    MIN_MEMBERS,
    MemberEvidence,
    cluster_weights,
    community_mixture,
    newcomer_prior,
)
from bot.engine.learners import DynaLearner
from bot.engine.learners.dyna import DynaParams
from bot.engine.learners.dyna.forgetting import REWARD_SUM, VISITS
from bot.engine.population import random_populations
from bot.engine.qlearning import DEFAULT_GENRES as G
from bot.engine.server_sim import simulate_servers, summarise
from tests.bot.engine.newcomer_counts import HIGH, LOW, own

POP, ROCK, JAZZ, CLASSICAL, HIPHOP = range(5)


def fan(top: int, liked: float = 0.9, reactions: int = 20, tried: float = 0.2) -> MemberEvidence:
    """A member who settled on ``top`` (``reactions`` there, liked at ``liked``) after
    trying every other genre a couple of times and liking it at ``tried``."""
    n = np.full(5, 2.0)
    n[top] = reactions
    share = np.full(5, tried)
    share[top] = liked
    yes = np.round(share * n)
    return MemberEvidence(n, yes * HIGH + (n - yes) * LOW)


def two_camps(jazz: int = 8, rock: int = 4, loners: int = 0) -> list[MemberEvidence]:
    return [fan(JAZZ)] * jazz + [fan(ROCK)] * rock + [fan(HIPHOP)] * loners


def test_clusters_are_the_members_who_settled_on_one_genre() -> None:
    mixture = community_mixture(two_camps(), LOW, HIGH)
    assert mixture is not None
    assert mixture.mean.shape == (2, 5)
    assert mixture.mean[0, JAZZ] > 0.8  # the jazz cluster, the larger, first
    assert mixture.mean[1, ROCK] > 0.8  # the rock cluster
    weights = mixture.weights
    assert weights.sum() == pytest.approx(1.0)
    assert weights[-1] >= FRESH_WEIGHT - 1e-12  # "like none of them" keeps its floor
    assert weights[0] / weights[1] == pytest.approx(8 / 4)  # by cluster size


def test_no_cluster_of_fewer_than_three_members() -> None:
    """Privacy: a cluster's figures are sums of at least MIN_MEMBERS members; two members
    alike describe nothing, and their share goes to the fixed prior."""
    assert MIN_MEMBERS == 3
    mixture = community_mixture(two_camps(jazz=8, rock=0, loners=2), LOW, HIGH)
    assert mixture is not None
    assert mixture.mean.shape == (1, 5)  # jazz only: the two hip-hop fans are no cluster
    assert mixture.weights[-1] == pytest.approx(max(2 / 10, FRESH_WEIGHT))
    assert community_mixture(two_camps(jazz=2, rock=2), LOW, HIGH) is None


def test_a_newcomers_reactions_move_the_weights_to_the_cluster_they_match() -> None:
    mixture = community_mixture(two_camps(), LOW, HIGH)
    assert mixture is not None
    start = cluster_weights(mixture, *own({}), LOW, HIGH)
    np.testing.assert_allclose(start, mixture.weights)  # no reactions: the prior weights
    rocker = cluster_weights(mixture, *own({JAZZ: (0, 2), ROCK: (2, 0)}), LOW, HIGH)
    assert rocker[1] > 0.8  # two 👎 for Jazz and two 👍 for Rock: the rock cluster
    assert rocker[0] < 0.01
    stranger = cluster_weights(mixture, *own({JAZZ: (0, 2), ROCK: (0, 2)}), LOW, HIGH)
    assert stranger[-1] > 2 * start[-1]  # unlike both: released towards the fixed prior
    assert stranger[-1] > 0.6


def test_the_prior_only_lifts_what_a_cluster_likes() -> None:
    """A cluster's genres below the fixed prior's mean add no pseudo-reactions: a member
    unlike the majority explores them as a fresh member would."""
    assert DynaParams().prior_mean == LIFT_ABOVE
    mixture = community_mixture(two_camps(rock=0), LOW, HIGH)
    assert mixture is not None
    prior = newcomer_prior(mixture, *own({}), LOW, HIGH)
    assert prior is not None
    assert prior.strength[JAZZ] > 0
    assert prior.mean[JAZZ] > LIFT_ABOVE
    assert (prior.strength[[POP, ROCK, CLASSICAL, HIPHOP]] == 0).all()
    # once the newcomer dislikes Jazz the lift fades
    after = newcomer_prior(mixture, *own({JAZZ: (0, 3)}), LOW, HIGH)
    assert after is None or after.strength[JAZZ] < 0.2 * prior.strength[JAZZ]


def test_the_learner_swaps_pseudo_reactions_and_keeps_the_history() -> None:
    mixture = community_mixture(two_camps(), LOW, HIGH)
    assert mixture is not None
    first = newcomer_prior(mixture, *own({}), LOW, HIGH)
    learner = DynaLearner()
    state = learner.initial_state(5, prior=first)
    learner.update(state, POP, ROCK, HIGH, ROCK)
    learner.update(state, ROCK, JAZZ, LOW, JAZZ)
    assert state.memory is not None
    history = (
        state.memory[[VISITS, REWARD_SUM]]
        - learner.initial_state(5, prior=first).memory[[VISITS, REWARD_SUM]]
    )  # type: ignore[index]
    second = newcomer_prior(mixture, state.visits.sum(0), state.reward_sum.sum(0), LOW, HIGH)
    assert second is not None
    assert second.strength[ROCK] > first.strength[ROCK]  # the rock cluster gained
    learner.replace_prior(state, first, second)
    expected = learner.initial_state(5, prior=second).memory[[VISITS, REWARD_SUM]] + history  # type: ignore[index]
    np.testing.assert_allclose(state.memory[[VISITS, REWARD_SUM]], expected, atol=1e-12)
    assert state.visits.sum() == 2  # the listener's own history is untouched
    planned = learner._planned(np.zeros((5, 5)), state.memory[VISITS], state.memory[REWARD_SUM])
    np.testing.assert_allclose(state.q, planned, atol=1e-9)  # the table was re-planned
    learner.replace_prior(state, second, None)
    np.testing.assert_allclose(state.memory[[VISITS, REWARD_SUM]], history, atol=1e-12)


def test_generated_populations_have_two_or_three_groups_and_repeat_by_seed() -> None:
    pops = random_populations(2026, 6)
    assert [p.name for p in pops] == [f"gen2026_{i}" for i in range(6)]
    for p in pops:
        assert 2 <= len(p.groups) <= 3
        assert sum(g.share for g in p.groups) == pytest.approx(1.0)
        assert min(g.share for g in p.groups) > 0.05
        favourites = [max(g.preferences, key=g.preferences.get) for g in p.groups if not g.random]
        assert len(set(favourites)) == len(favourites)  # each group its own favourite
    assert random_populations(2026, 6) == pops
    assert random_populations(7, 6) != pops


# --- simulated servers: where the figures come from ---------------------------------------
def _servers(community: bool, listeners: int = 12):
    pop = random_populations(2026, 1)[0]
    rng = np.random.default_rng(5)
    learner = DynaLearner(DynaParams())
    run = simulate_servers(pop, learner, G, listeners, 25, 4, rng, community=community)
    return pop, run


def test_joiners_before_any_cluster_of_three_start_as_with_the_community_off() -> None:
    _, on = _servers(True)
    _, off = _servers(False)
    # the same listeners and random numbers: nothing to start from, so the same runs
    np.testing.assert_array_equal(on.regret[:, :MIN_MEMBERS], off.regret[:, :MIN_MEMBERS])
    np.testing.assert_array_equal(on.regret_20[:, :MIN_MEMBERS], off.regret_20[:, :MIN_MEMBERS])
    assert not np.array_equal(on.regret, off.regret)  # later joiners did start elsewhere


def test_by_arrival_buckets_cover_every_joiner_in_join_order() -> None:
    pop, run = _servers(True)
    out = summarise(run, pop)
    buckets = out["by_arrival"]
    assert [(b["first"], b["last"]) for b in buckets] == [(1, 5), (6, 10), (11, 12)]
    assert sum(b["listeners"] for b in buckets) == run.regret.size
    assert buckets[0]["regret_20"] == pytest.approx(float(run.regret_20[:, :5].mean()))
    weighted = sum(b["listeners"] * b["regret"] for b in buckets) / run.regret.size
    assert weighted == pytest.approx(out["regret"])
