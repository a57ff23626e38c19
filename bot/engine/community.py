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
