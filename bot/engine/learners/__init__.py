"""Pluggable learners. Each one keeps a Q-table and updates it by TD.

The service, the simulators and the CLI only see the :class:`Learner` protocol,
so the seed's algorithm stays available unchanged as ``seed`` next to better ones.
Every learner is built as ``cls(params, *, rewards)`` with its own parameter class.
"""

from __future__ import annotations

from typing import Any

from bot.engine.learners.base import (
    DEFAULT_REWARDS,
    BatchLearner,
    CommunityLearner,
    Learner,
    LearnerClass,
    LearnerParams,
    Rewards,
    takes_community_prior,
)
from bot.engine.learners.dyna import DynaLearner, DynaParams
from bot.engine.learners.seed import SeedLearner, SeedParams

__all__ = [
    "DEFAULT_LEARNER",
    "DEFAULT_REWARDS",
    "LEARNERS",
    "BatchLearner",
    "CommunityLearner",
    "DynaLearner",
    "DynaParams",
    "Learner",
    "LearnerClass",
    "LearnerParams",
    "SeedLearner",
    "SeedParams",
    "learner_class",
    "make_learner",
    "takes_community_prior",
]

LEARNERS: dict[str, LearnerClass] = {
    "seed": SeedLearner,
    "dyna": DynaLearner,
}
DEFAULT_LEARNER = "dyna"


def learner_class(name: str | None = None) -> LearnerClass:
    """The learner class by name (None: the default); ValueError lists the known ones."""
    key = (name or DEFAULT_LEARNER).strip().lower()
    if key not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; choose one of {', '.join(sorted(LEARNERS))}")
    return LEARNERS[key]


def make_learner(
    name: str | None = None, params: Any = None, *, rewards: Rewards | None = None
) -> BatchLearner:
    """Build a learner by name with its own ``params`` (None: its defaults).

    ``rewards=(dislike, like)`` is the bot's reward range (None: −5/+10). A ``params``
    of another learner's class raises TypeError, so no setting is silently dropped.
    """
    cls = learner_class(name)
    if params is not None and not isinstance(params, cls.params_type):
        raise TypeError(
            f"the {cls.name} learner takes {cls.params_type.__name__}, got {type(params).__name__}"
        )
    return cls(params, rewards=rewards)
