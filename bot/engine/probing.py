"""Information-directed probing: what to suggest a newcomer while their taste is unsure.

With the community prior a newcomer starts from their server's taste clusters
(:func:`bot.engine.community.community_mixture`), weighed by their own reactions. Most
genres earn mostly 👍 under every cluster, so the learner, which plays what its blended
prior rates highest, learns slowly which genre is theirs. During their first
:data:`PROBE_REACTIONS` reactions, and while no cluster is sure, this rule chooses instead
the genre that buys the most information per unit of expected regret (Russo & Van Roy's
information-directed sampling). Under the mixture posterior (each cluster and the fresh
component a Beta per genre, updated by the newcomer's own reactions), for each genre a:

* Δ(a) = E[max_b θ(b)] − E[θ(a)], the expected regret of suggesting a;
* g(a) = I(A*; Y_a), the information the 👍/👎 to a gives about the best genre A*;

and it suggests argmin Δ(a)² / g(a). Both are estimated from :data:`PROBE_DRAWS` posterior
draws made with a generator seeded by :data:`PROBE_SEED` on every call, so the pick is a
function of the mixture and the counts: its propensity is 1.

Measured 2026-12-01 (``benchmarks/learning_quality.py --sections population --servers 60``,
60 servers × 50 listeners × 50 reactions, community on against off): regret@20 fell on every
one of 9 populations (gen2026_0 0.66 → 0.61, gen2026_2 0.61 → 0.60, jazz_club 0.53 → 0.50,
gen7_0 0.56 → 0.54) and the worst group's regret ratio went from 1.19 to 1.11. Most of the
gain is the majority's: a 👍 to the majority's favourite stays likely under every cluster,
so probing does not tell a minority apart much sooner.

Pure numpy: the bot's service and the offline ``compare --population`` call
:func:`probe_pick` on the same mixture and counts, so they run the same rule.
"""

from __future__ import annotations

import numpy as np

from bot.engine.community import CommunityMixture, cluster_weights, component_betas

PROBE_REACTIONS = 5
"""A newcomer is probed during their first this many reactions at most. Every probe costs
the members who are like none of the clusters: probing for 20 lowered regret@20 further
(0.59 on gen2026_0, 0.52 on gen2026_2 at 60 servers) but raised random-taste groups to
1.16-1.19× their regret with the community off; 5 keeps every group within 1.11×."""
SURE = 0.9
"""Probing stops once one cluster holds this much posterior weight."""
PROBE_DRAWS = 256
"""Posterior draws the regret and the information are estimated from."""
PROBE_SEED = 20261201
"""The draws' seed: the same draws on every call, so the pick is deterministic."""


def information_ratio(
    mixture: CommunityMixture,
    reactions: np.ndarray,
    reward_sum: np.ndarray,
    low: float,
    high: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(Δ, g) per genre for a newcomer with these reactions and reward sums per genre;
    ``weights``: their :func:`~bot.engine.community.cluster_weights`, when already known."""
    w = cluster_weights(mixture, reactions, reward_sum, low, high) if weights is None else weights
    a, b = component_betas(mixture, reactions, reward_sum, low, high)
    rng = np.random.default_rng(PROBE_SEED)
    component = rng.choice(w.size, size=PROBE_DRAWS, p=w)
    theta = rng.beta(a[component], b[component])  # (draws, genres): P(👍) per genre
    best = theta.argmax(axis=1)
    mean = theta.mean(axis=0)
    delta = theta.max(axis=1).mean() - mean
    gain = np.zeros(mean.size)
    # not np.unique: on the bot's event loop its first call imports numpy.ma (50 ms)
    for j in np.flatnonzero(np.bincount(best, minlength=mean.size)):
        given = theta[best == j].mean(axis=0)  # P(👍) per genre, given that j is the best
        gain += (best == j).mean() * _bernoulli_kl(given, mean)
    return delta, gain


def probe_pick(
    mixture: CommunityMixture,
    reactions: np.ndarray,
    reward_sum: np.ndarray,
    low: float,
    high: float,
) -> int | None:
    """The genre to suggest a newcomer with these reactions per genre, or None: past
    :data:`PROBE_REACTIONS`, or once a cluster is :data:`SURE` (the learner's own
    choice stands)."""
    if float(np.sum(reactions)) >= PROBE_REACTIONS:
        return None
    w = cluster_weights(mixture, reactions, reward_sum, low, high)
    if w[:-1].max() >= SURE:
        return None
    delta, gain = information_ratio(mixture, reactions, reward_sum, low, high, w)
    return int((delta**2 / np.maximum(gain, 1e-12)).argmin())


def _bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
