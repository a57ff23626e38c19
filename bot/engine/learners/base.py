"""The learner protocols: what the service, the trainers and the CLI may ask of a learner.

Every learner is built the same way, ``cls(params, *, rewards=(dislike, like))``, where
``params`` is an instance of its own parameter class (``cls.params_type``): a learner's
settings are exactly the fields of that class, so nothing it ignores is shown as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeGuard, runtime_checkable

import numpy as np

from bot.engine.community import CommunityPrior
from bot.engine.logs import BatchLog, TrainingLog
from bot.engine.qlearning import BatchState, LearnerState

Rewards = tuple[float, float]
"""The bot's (dislike, like) rewards."""
DEFAULT_REWARDS: Rewards = (-5.0, 10.0)

Progress = Callable[[int], None]


class LearnerParams(Protocol):
    """A learner's settings: a frozen dataclass that validates itself."""

    @property
    def gamma(self) -> float:
        """The discount every learner plans with (the benchmarks' Q* uses it too)."""
        ...

    def as_dict(self) -> dict[str, float]:
        """Every setting by field name (the ``simulate --json`` ``params``)."""
        ...


class Learner(Protocol):
    """How one listener's state is initialised, acted on, updated and adapted."""

    name: str
    uses_community_prior: bool
    """True when :meth:`initial_state`/``init_batch`` also take a community prior (then
    the learner is a :class:`CommunityLearner`, see :func:`takes_community_prior`)."""

    @property
    def reward_range(self) -> Rewards:
        """The (dislike, like) rewards it was built for (a community prior is scaled to them)."""
        ...

    @property
    def params(self) -> LearnerParams:
        """The learner's own settings (an instance of its ``params_type``)."""
        ...

    def initial_state(self, n_genres: int) -> LearnerState:
        """A fresh state for a new listener."""
        ...

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        """The genre index to suggest from current genre ``s``."""
        ...

    def selection_probabilities(
        self, state: LearnerState, s: int, rng: np.random.Generator
    ) -> np.ndarray:
        """P(select = a) from ``s`` for every genre a: the propensities logged with each
        recommendation for offline evaluation (exact, or estimated with ``rng``)."""
        ...

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        """Apply one rewarded step in place and return the TD error."""
        ...

    def adapt(
        self, state: LearnerState, old_genres: Sequence[str], new_genres: Sequence[str]
    ) -> LearnerState:
        """A stored state, kept under ``old_genres``, for the configured ``new_genres``.

        Called when the genre list changed since the state was stored. The result must
        offer an added genre as a fresh table with the same history would.
        """
        ...


class BatchLearner(Learner, Protocol):
    """A learner that can also train many independent listeners at once (users axis first).

    Each call advances every user one step; this is what makes ``compare`` and the
    benchmarks fast (numpy over the users axis instead of a Python loop per user).
    """

    def init_batch(self, n_users: int, n_genres: int) -> BatchState: ...

    def select_batch(
        self, bs: BatchState, s: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> np.ndarray | None:
        """Apply one rewarded step per user in place; a learner may return its TD errors."""
        ...


class CommunityLearner(BatchLearner, Protocol):
    """A learner that can start a newcomer from their server's taste (a CommunityPrior)."""

    def initial_state(self, n_genres: int, prior: CommunityPrior | None = None) -> LearnerState:
        """A fresh state, started from ``prior`` when one is given."""
        ...

    def init_batch(
        self,
        n_users: int,
        n_genres: int,
        priors: Sequence[CommunityPrior | None] | None = None,
    ) -> BatchState:
        """Fresh listeners, each started from its own prior (or none)."""
        ...

    def replace_prior(
        self, state: LearnerState, old: CommunityPrior | None, new: CommunityPrior | None
    ) -> None:
        """Swap a newcomer's prior ``old`` for ``new`` (re-weighed by their reactions)."""
        ...

    def replace_priors(
        self,
        bs: BatchState,
        old: Sequence[CommunityPrior | None],
        new: Sequence[CommunityPrior | None],
    ) -> None:
        """:meth:`replace_prior` for each listener of a batch."""
        ...


def takes_community_prior(learner: Learner) -> TypeGuard[CommunityLearner]:
    """Whether ``learner`` starts newcomers from a community prior (its declared flag)."""
    return learner.uses_community_prior


class LearnerClass(Protocol):
    """What the registry holds: a learner class, its name and its parameter class."""

    name: str
    params_type: type[Any]

    def __call__(self, params: Any = None, *, rewards: Rewards | None = None) -> BatchLearner: ...


@runtime_checkable
class FastChain(Protocol):
    """A learner with its own fused single-chain loop (:func:`bot.engine.training.run_chain`).

    It must compute the same process as the generic loop; it may return None to decline
    (for example when a subclass changed ``select``), and then must not have touched
    ``rng`` or ``state``.
    """

    def run_chain_fast(
        self,
        state: LearnerState,
        probs: np.ndarray,
        s: int,
        episodes: int,
        rng: np.random.Generator,
        genres: tuple[str, ...],
        progress: Progress,
    ) -> TrainingLog | None: ...


@runtime_checkable
class FastBatch(Protocol):
    """A learner with its own fused batched loop (:func:`bot.engine.batch_training.train_batch`).

    The same contract as :class:`FastChain`, over a users axis.
    """

    def train_batch_fast(
        self,
        bs: BatchState,
        probs: np.ndarray,
        s: np.ndarray,
        steps: int,
        rng: np.random.Generator,
    ) -> BatchLog | None: ...
