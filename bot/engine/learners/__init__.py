"""Pluggable learners. Each one keeps a Q-table and updates it by TD.

The service, the simulators and the CLI only see the :class:`Learner` protocol,
so the seed's algorithm stays available unchanged as ``seed`` next to better ones.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.engine.learners.base import BatchLearner, Learner
from bot.engine.learners.dyna import DynaLearner
from bot.engine.learners.seed import SeedLearner
from bot.engine.qlearning import AgentParams

__all__ = [
    "DEFAULT_LEARNER",
    "LEARNERS",
    "BatchLearner",
    "DynaLearner",
    "Learner",
    "SeedLearner",
    "make_learner",
]

LEARNERS: dict[str, Callable[..., BatchLearner]] = {
    "seed": SeedLearner,
    "dyna": DynaLearner,
}
DEFAULT_LEARNER = "dyna"


def make_learner(
    name: str | None = None,
    params: AgentParams | None = None,
    *,
    rewards: tuple[float, float] | None = None,
) -> BatchLearner:
    """Build a learner by name; an unknown name raises ValueError listing the known ones.

    ``rewards=(dislike, like)`` tells learners with a reward model (``uses_reward_range``)
    the bot's reward range; None keeps their default (−5/+10), the others ignore it.
    """
    key = (name or DEFAULT_LEARNER).strip().lower()
    if key not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; choose one of {', '.join(sorted(LEARNERS))}")
    factory = LEARNERS[key]
    if rewards is not None and getattr(factory, "uses_reward_range", False):
        return factory(params or AgentParams(), rewards=rewards)
    return factory(params or AgentParams())
