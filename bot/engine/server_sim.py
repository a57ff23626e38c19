"""A simulated server: listeners from a population join one after another, each reacts
a number of times, and each newcomer may start from what the members before them taught
(the community prior, :mod:`bot.engine.community`), exactly as the bot starts a
member's first table in a guild. Many servers (seeds) run at once, one batch per joiner.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from bot.engine.batch_training import Stretch, train_stretches
from bot.engine.community import (
    REWEIGH_REACTIONS,
    CommunityMixture,
    CommunityPrior,
    MemberEvidence,
    community_mixture,
    evidence_from_log,
    newcomer_prior,
)
from bot.engine.learners import BatchLearner, takes_community_prior
from bot.engine.listeners import REWARDS
from bot.engine.population import Population
from bot.engine.probing import probe_pick
from bot.engine.qlearning import BatchState
from bot.engine.random_listeners import optimal_policy

FIRST = 20
ARRIVAL_EDGES = (5, 10, 20)
"""Join-order buckets of :func:`summarise`'s ``by_arrival``: joiners 1–5, 6–10, 11–20 and
the rest. The first few joiners of a server have no cluster of 3 members to start from,
so they show where a server's figures come from (measured 2026-12-01: joiners 1–5 kept
0.9–1.0× their regret@20 and made about a quarter of it with the community on)."""


@dataclass(frozen=True)
class ServerRun:
    """Per (server, joiner): the group index and the three figures, shape (seeds, N)."""

    group: np.ndarray
    regret: np.ndarray
    regret_20: np.ndarray
    neg_rate_first_20: np.ndarray


class Newcomers:
    """The joiners of one round (one per server): their starting state and, with the
    community on, each server's taste clusters and the prior each joiner holds now."""

    def __init__(
        self,
        learner: BatchLearner,
        n_genres: int,
        evidence: list[list[MemberEvidence]],
        on: bool,
    ) -> None:
        self.mixtures: list[CommunityMixture | None] = [None] * len(evidence)
        self.priors: list[CommunityPrior | None] = [None] * len(evidence)
        self.low, self.high = (float(x) for x in learner.reward_range)
        self.learner = learner if takes_community_prior(learner) else None
        if not on or self.learner is None:
            self.state = learner.init_batch(len(evidence), n_genres)
            return
        zeros = np.zeros(n_genres)
        for k, members in enumerate(evidence):
            mix = self.mixtures[k] = community_mixture(members, self.low, self.high)
            if mix is not None:
                self.priors[k] = newcomer_prior(mix, zeros, zeros, self.low, self.high)
        self.state = self.learner.init_batch(len(evidence), n_genres, priors=self.priors)

    def reweigh(self, bs: BatchState) -> None:
        """After a reaction: each joiner's prior from their clusters, weighed by what they
        did so far (the bot does the same after each of a newcomer's first reactions)."""
        new = list(self.priors)
        for k, mix in enumerate(self.mixtures):
            if mix is not None:
                own_n, own_r = bs.visits[k].sum(axis=0), bs.reward_sum[k].sum(axis=0)
                new[k] = newcomer_prior(mix, own_n, own_r, self.low, self.high)
        if self.learner is not None:
            self.learner.replace_priors(bs, self.priors, new)
        self.priors = new

    def probe(self, bs: BatchState, picks: np.ndarray) -> np.ndarray:
        """The learner's picks, with each unsure joiner's replaced by their probe
        (:func:`bot.engine.probing.probe_pick`, as the bot's service does)."""
        out = picks.copy()
        for k, mix in enumerate(self.mixtures):
            if mix is not None:
                n, r = bs.visits[k].sum(axis=0), bs.reward_sum[k].sum(axis=0)
                probe = probe_pick(mix, n, r, self.low, self.high)
                if probe is not None:
                    out[k] = probe
        return out


def simulate_servers(
    population: Population,
    learner: BatchLearner,
    genres: tuple[str, ...],
    listeners: int,
    episodes: int,
    seeds: int,
    rng: np.random.Generator,
    *,
    community: bool,
    gamma: float = 0.9,
) -> ServerRun:
    """Run ``seeds`` servers of ``listeners`` joiners, ``episodes`` reactions each."""
    n = len(genres)
    drawn = [[population.draw(rng, genres) for _ in range(listeners)] for _ in range(seeds)]
    evidence: list[list[MemberEvidence]] = [[] for _ in range(seeds)]
    shape = (seeds, listeners)
    group = np.empty(shape, dtype=np.intp)
    regret, regret_20, neg = np.empty(shape), np.empty(shape), np.empty(shape)
    users = np.arange(seeds)
    for i in range(listeners):
        people = [drawn[k][i][1] for k in range(seeds)]
        group[:, i] = [drawn[k][i][0] for k in range(seeds)]
        probs = np.stack([u.reward_probs(genres) for u in people])
        home = np.stack([u.home_probs(genres) for u in people])
        expected = np.stack([u.expected_rewards(genres) for u in people])
        policy = np.stack([optimal_policy(u, genres, gamma) for u in people])
        joiners = Newcomers(learner, n, evidence, community)
        early = min(episodes, REWEIGH_REACTIONS) if any(joiners.mixtures) else 0
        stretches = [Stretch(1, probs, home)] * early + [Stretch(episodes - early, probs, home)]
        log = train_stretches(
            learner,
            stretches,
            seeds,
            rng,
            switch=population.switch,
            state=joiners.state,
            between=joiners.reweigh if early else None,
            steer=joiners.probe if early else None,
        )
        s, a = log.states.astype(np.intp), log.actions.astype(np.intp)
        lost = expected[users, s, policy[users, s]] - expected[users, s, a]
        regret[:, i] = lost.sum(axis=0)
        regret_20[:, i] = lost[:FIRST].sum(axis=0)
        neg[:, i] = (log.rewards[:FIRST] == REWARDS[0]).mean(axis=0)
        for k, member in enumerate(evidence_from_log(log.actions, log.rewards, n)):
            evidence[k].append(member)
    return ServerRun(group, regret, regret_20, neg)


def summarise(run: ServerRun, population: Population) -> dict[str, object]:
    """The JSON figures: means over every joiner, per group, and per join-order bucket
    (``by_arrival``: joiners ``first``..``last``, 1-based)."""

    def figures(mask: np.ndarray) -> dict[str, float | None]:
        if not mask.any():
            return {"regret": None, "regret_20": None, "neg_rate_first_20": None}
        return {
            "regret": float(run.regret[mask].mean()),
            "regret_20": float(run.regret_20[mask].mean()),
            "neg_rate_first_20": float(run.neg_rate_first_20[mask].mean()),
        }

    everyone = np.ones_like(run.group, dtype=bool)
    out: dict[str, object] = dict(figures(everyone))
    out["by_group"] = [
        {"group": g.name, "listeners": int((run.group == k).sum()), **figures(run.group == k)}
        for k, g in enumerate(population.groups)
    ]
    n = run.group.shape[1]
    edges = [0, *(e for e in ARRIVAL_EDGES if e < n), n]
    by_arrival: list[dict[str, object]] = []
    for lo, hi in pairwise(edges):
        arrived = np.zeros_like(everyone)
        arrived[:, lo:hi] = True
        row = {"first": lo + 1, "last": hi, "listeners": int(arrived.sum())}
        by_arrival.append(row | figures(arrived))
    out["by_arrival"] = by_arrival
    return out
