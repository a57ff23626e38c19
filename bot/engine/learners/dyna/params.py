"""The ``dyna`` learner's settings and the reward range its model is scaled to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from bot.engine.learners.base import DEFAULT_REWARDS, Rewards
from bot.engine.learners.dyna.forgetting import ChangeConfig
from bot.engine.qlearning import check_range


@dataclass(frozen=True, slots=True)
class DynaParams:
    """Everything ``dyna`` uses. It has no α (the TD step is 1/visits and the table is then
    planned exactly) and no ε schedule (it chooses by Thompson sampling)."""

    gamma: float = 0.9
    # Prior for each genre's pooled reward on the [0, 1] scale (0.8 ≈ +7): most genres
    # are liked more often than not; 4 pseudo-reactions so one reaction shifts it a bit.
    prior_mean: float = 0.8
    prior_strength: float = 4.0
    # Prior probability that r(s, a) is a taste of its own rather than genre a's pooled
    # reward, and the strength (pseudo-reactions at the pool's mean) of that own taste.
    own_taste_prior: float = 0.5
    slab_strength: float = 2.0
    # Concentration multiplier for the posterior draw. Plain Thompson (1) over-explores
    # at a horizon of tens of reactions; 4 roughly halved regret@200 in our benchmark.
    # With the exactly solved table 6 measured better (regret@1000 ~275 vs ~295 at 4).
    # Sharpening is also what leaves a genre with an unlucky start untried (most stuck runs),
    # but capping each draw's concentration at max(a + b, 60), so thinly known genres keep
    # a wider draw, was worse (2026-12-02, 200 seeds: generated regret@1000 295 -> 341,
    # stuck runs 2.0 % -> 2.25 %, built-ins 101 -> 106).
    sharpness: float = 6.0
    # A new listener's draw is concentrated a further ×30 (nearly greedy), fading with an
    # e-folding of 20 reactions: it cut regret@50 by ~20 % at no cost by 1000 steps.
    early_sharpness: float = 30.0
    early_reactions: float = 20.0
    explore_rate: float = 0.1  # smoothing of the observed exploration share (epsilon)
    # Adaptive forgetting: a change detector per cell and what a change forgets
    # (bot.engine.learners.dyna.forgetting). threshold=inf turns it off.
    change: ChangeConfig = field(default_factory=ChangeConfig)

    def __post_init__(self) -> None:
        """Reject settings that would put a Beta parameter at 0 (log Γ(0) is infinite)."""
        check_range("gamma", self.gamma, 0.0, 1.0, lo_open=False, hi_open=True)
        for name in ("prior_mean", "own_taste_prior", "explore_rate"):
            check_range(name, getattr(self, name), 0.0, 1.0, lo_open=True, hi_open=True)
        for name in ("prior_strength", "slab_strength", "sharpness", "early_reactions"):
            check_range(name, getattr(self, name), 0.0, math.inf, lo_open=True, hi_open=True)
        check_range(
            "early_sharpness", self.early_sharpness, 1.0, math.inf, lo_open=False, hi_open=True
        )

    def as_dict(self) -> dict[str, float]:
        """The numeric settings (the change detector's are its own dataclass)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "change"}


@dataclass(frozen=True, slots=True)
class RewardScale:
    """The bot's dislike and like rewards: the model rescales rewards to [0, 1] between them.

    Exact for 👍/👎; a reward outside the range counts as 0 or 1.
    """

    low: float = DEFAULT_REWARDS[0]
    high: float = DEFAULT_REWARDS[1]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"rewards must be finite, got {self.low}, {self.high}")
        if not self.low < self.high:
            raise ValueError(f"dislike reward {self.low:g} must be below like reward {self.high:g}")

    @classmethod
    def of(cls, rewards: Rewards | None) -> RewardScale:
        return cls() if rewards is None else cls(float(rewards[0]), float(rewards[1]))

    @property
    def span(self) -> float:
        return self.high - self.low
