"""A newcomer's starting point from what the other members of their server taught.

The evidence is, per member and genre, how many reactions they gave to that genre's
suggestions and the sum of those rewards (the same numbers their own history holds).
A newcomer never sees another member's table: only the per-genre aggregate, turned into
a Beta prior on each genre's reward (on the learner's [0, 1] scale) whose strength the
data justify, by empirical Bayes:

* the mean is the server's pooled liked-share for the genre;
* the strength κ (pseudo-reactions) comes from how much members disagree: under a
  beta-binomial model the spread of the members' own shares around the mean is the
  sampling noise plus the between-member variance, and κ = 1/ρ − 1 where ρ is the
  intra-class correlation that spread implies. A server whose members agree gives a
  strong prior, one whose members disagree a weak one, so a member unlike the others
  overrides it within a few reactions.

Pure numpy: the bot's service and the offline ``compare --population`` both call
:func:`community_prior` on evidence rows, so they run the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_STRENGTH = 2.0
"""Upper bound on κ per genre: even a unanimous server is worth at most 2 reactions per genre.
A larger cap helped the majority more but cost members unlike it over 15 % of their regret
on bimodal populations (measured 2026-12-01: cap 4 gave a 70/30 server's minority 1.41×,
cap 2 gave 1.12×), because one Beta cannot describe two camps."""
MIN_MEMBERS = 3
"""Genres that fewer members rated give no prior (their spread cannot be estimated)."""


@dataclass(frozen=True)
class MemberEvidence:
    """One member's reactions in one server, per genre: counts and reward sums, (n,)."""

    reactions: np.ndarray
    reward_sum: np.ndarray


@dataclass(frozen=True)
class CommunityPrior:
    """Per genre: the prior mean of the reward on [0, 1] and its strength in reactions."""

    mean: np.ndarray
    strength: np.ndarray

    def __post_init__(self) -> None:
        if self.mean.shape != self.strength.shape or self.mean.ndim != 1:
            raise ValueError("mean and strength must be vectors of one length")

    @property
    def empty(self) -> bool:
        return not bool(np.any(self.strength > 0))


def _shares(
    members: Sequence[MemberEvidence], low: float, high: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts, liked shares) as (members, n) arrays; shares are 0 where count is 0."""
    n = np.array([m.reactions for m in members], dtype=np.float64)
    total = np.array([m.reward_sum for m in members], dtype=np.float64)
    liked = np.clip((total - n * low) / (high - low), 0.0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, liked / np.where(n > 0, n, 1.0), 0.0)
    return n, liked, share


def community_prior(
    members: Sequence[MemberEvidence],
    low: float,
    high: float,
    *,
    max_strength: float = MAX_STRENGTH,
    min_members: int = MIN_MEMBERS,
) -> CommunityPrior | None:
    """The empirical-Bayes prior from a server's members (None: nothing to go on).

    Per genre, with member shares p_i from n_i reactions, pooled mean μ = Σ liked / Σ n
    and K members who rated it: the n-weighted spread s² = Σ n_i (p_i − μ)² / Σ n_i has
    expectation μ(1 − μ)·(ρ + (1 − ρ)·K / Σ n) under a beta-binomial with intra-class
    correlation ρ, which gives ρ, then κ = 1/ρ − 1, capped at ``max_strength`` and at
    the evidence itself (Σ n).
    """
    if not members or not high > low:
        return None
    n, liked, share = _shares(members, low, high)
    total = n.sum(axis=0)
    raters = (n > 0).sum(axis=0)
    mean = np.where(total > 0, liked.sum(axis=0) / np.maximum(total, 1e-12), 0.5)
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    spread = (n * (share - mean) ** 2).sum(axis=0) / np.maximum(total, 1e-12)
    binomial = mean * (1.0 - mean)
    k_over_n = raters / np.maximum(total, 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (spread / binomial - k_over_n) / np.maximum(1.0 - k_over_n, 1e-12)
    rho = np.clip(np.nan_to_num(rho, nan=1.0), 1.0 / (1.0 + max_strength), 1.0)
    strength = np.minimum(1.0 / rho - 1.0, total)
    strength = np.where(raters >= min_members, strength, 0.0)
    prior = CommunityPrior(mean, strength)
    return None if prior.empty else prior


def evidence_from_log(
    actions: np.ndarray, rewards: np.ndarray, n_genres: int
) -> list[MemberEvidence]:
    """Per run (column) of a (steps, runs) log, the member evidence it leaves behind."""
    out = []
    for a, r in zip(actions.T.astype(np.intp), rewards.T.astype(np.float64), strict=True):
        out.append(
            MemberEvidence(
                np.bincount(a, minlength=n_genres).astype(np.float64),
                np.bincount(a, weights=r, minlength=n_genres),
            )
        )
    return out


# --- taste clusters: a mixture prior the newcomer's own reactions weigh -----------------
MIXTURE_STRENGTH = 6.0
"""Cap on κ per genre within one taste cluster (members of one cluster agree, so their
prior can be stronger than the whole server's: a member of another cluster is released
by the mixture's weights, not by a weak prior)."""
FRESH_WEIGHT = 0.3
"""Prior weight, at least, of "like none of the clusters": the fixed prior, no pseudo-reactions."""
LIKELIHOOD_STRENGTH = 2.0
"""Floor on a cluster's κ when it scores a newcomer's reactions, so a cluster whose members
spread widely (a U-shaped Beta) cannot claim or refuse a newcomer on one reaction."""
LIFT_ABOVE = 0.8
"""A cluster adds pseudo-reactions only for genres it likes above this (the fixed prior's
mean, ``DynaParams.prior_mean``): the prior lifts what a cluster likes and never pushes a
genre below where a fresh member starts, so a member unlike the majority still explores it
(pushing down too cut the majority's −5s a little more but cost the random-taste minority
up to 1.3× their regret on generated servers, measured 2026-12-01)."""
REWEIGH_REACTIONS = 20
"""A newcomer's prior is re-weighed after each of their first this many reactions; after
that their own evidence outweighs it and it stays as it is."""


@dataclass(frozen=True)
class CommunityMixture:
    """A server's taste clusters, largest first: K clusters' priors per genre, (K, n), and
    K + 1 prior weights, the last for the fixed prior (a newcomer like none of them)."""

    weights: np.ndarray
    mean: np.ndarray
    strength: np.ndarray

    def __post_init__(self) -> None:
        k = self.mean.shape[0]
        if self.mean.ndim != 2 or self.strength.shape != self.mean.shape:
            raise ValueError("mean and strength must be (clusters, genres) arrays of one shape")
        if self.weights.shape != (k + 1,):
            raise ValueError(f"{k} clusters need {k + 1} weights, got {self.weights.shape}")


def _top_genre(member: MemberEvidence, low: float, high: float) -> int:
    """The genre a member reacted to most (their learner settled there); ties by liked sum."""
    liked = np.clip((member.reward_sum - member.reactions * low) / (high - low), 0, None)
    return int(np.lexsort((liked, member.reactions))[-1])


def community_mixture(
    members: Sequence[MemberEvidence],
    low: float,
    high: float,
    *,
    max_strength: float = MIXTURE_STRENGTH,
    min_members: int = MIN_MEMBERS,
    fresh_weight: float = FRESH_WEIGHT,
) -> CommunityMixture | None:
    """The server's taste clusters (None: no cluster of ``min_members`` members yet).

    A cluster is the members whose most-reacted genre is the same: each member's own
    learner converged there, so it is where their taste is best. Each cluster of at least
    ``min_members`` gets the empirical-Bayes prior of :func:`community_prior` over its
    members only; members of smaller clusters are not described by any, so their share
    (at least ``fresh_weight``) goes to the fixed prior.
    """
    if not members or not high > low:
        return None
    active = [m for m in members if m.reactions.sum() > 0]
    clusters: dict[int, list[MemberEvidence]] = {}
    for m in active:
        clusters.setdefault(_top_genre(m, low, high), []).append(m)
    sizes, means, strengths = [], [], []
    for g in sorted(clusters):  # not np.unique: its first call imports numpy.ma (50 ms)
        cluster = clusters[g]
        if len(cluster) < min_members:
            continue
        prior = community_prior(cluster, low, high, max_strength=max_strength)
        if prior is not None:
            sizes.append(len(cluster))
            means.append(prior.mean)
            strengths.append(prior.strength)
    if not sizes:
        return None
    order = np.argsort(sizes, kind="stable")[::-1]  # largest cluster first
    sizes = [sizes[i] for i in order]
    means, strengths = [means[i] for i in order], [strengths[i] for i in order]
    share = np.array(sizes, dtype=np.float64) / len(active)
    fresh = max(1.0 - share.sum(), fresh_weight)
    weights = np.append(share * (1.0 - fresh) / share.sum(), fresh)
    return CommunityMixture(weights, np.array(means), np.array(strengths))


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (_lgamma(a) + _lgamma(b) - _lgamma(a + b)).astype(np.float64)


def component_betas(
    mixture: CommunityMixture,
    reactions: np.ndarray,
    reward_sum: np.ndarray,
    low: float,
    high: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each component's Beta per genre after a newcomer's own reactions ``reactions`` /
    ``reward_sum`` (n,): (a, b), each (K + 1, n). A cluster's prior has its κ floored at
    :data:`LIKELIHOOD_STRENGTH` (uniform where it has none); the last row, the fixed prior
    (a newcomer like none of the clusters), is uniform."""
    n = np.asarray(reactions, dtype=np.float64)
    liked = np.clip((np.asarray(reward_sum, dtype=np.float64) - n * low) / (high - low), 0.0, n)
    a0, b0 = _component_priors(mixture)
    return a0 + liked, b0 + n - liked


def _component_priors(mixture: CommunityMixture) -> tuple[np.ndarray, np.ndarray]:
    kappa = np.maximum(mixture.strength, LIKELIHOOD_STRENGTH)
    a = np.where(mixture.strength > 0, kappa * mixture.mean, 1.0)
    b = np.where(mixture.strength > 0, kappa * (1.0 - mixture.mean), 1.0)
    fresh = np.ones((1, mixture.mean.shape[1]))  # the fixed prior's row: uniform
    return np.vstack([a, fresh]), np.vstack([b, fresh])


def cluster_weights(
    mixture: CommunityMixture,
    reactions: np.ndarray,
    reward_sum: np.ndarray,
    low: float,
    high: float,
) -> np.ndarray:
    """Posterior weight of each cluster (and last, the fixed prior) given a newcomer's own
    reactions per genre, (n,): prior weight × the Beta-binomial likelihood of their liked
    counts under each component's Beta per genre (:func:`component_betas`)."""
    a0, b0 = _component_priors(mixture)
    a, b = component_betas(mixture, reactions, reward_sum, low, high)
    log_lik = (_log_beta(a, b) - _log_beta(a0, b0)).sum(axis=1)
    log_post = np.log(mixture.weights) + log_lik
    post = np.exp(log_post - log_post.max())
    return post / post.sum()


def newcomer_prior(
    mixture: CommunityMixture,
    reactions: np.ndarray,
    reward_sum: np.ndarray,
    low: float,
    high: float,
) -> CommunityPrior | None:
    """The prior a newcomer starts from, or holds after their first reactions: per genre,
    the clusters' pseudo-reactions for the genres they like (above :data:`LIFT_ABOVE`),
    weighed by :func:`cluster_weights` (the fixed prior's weight adds none).
    ``reactions``/``reward_sum`` are the newcomer's own, per genre."""
    w = cluster_weights(mixture, reactions, reward_sum, low, high)[:-1, np.newaxis]
    kappa = np.where(mixture.mean > LIFT_ABOVE, mixture.strength, 0.0)
    liked = (w * kappa * mixture.mean).sum(axis=0)
    strength = (w * kappa).sum(axis=0)
    mean = np.where(strength > 0, liked / np.maximum(strength, 1e-12), 0.5)
    prior = CommunityPrior(mean, strength)
    return None if prior.empty else prior
