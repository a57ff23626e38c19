"""The ``dyna`` learner: the model (:mod:`.posterior`, :mod:`.scalar`), planned exactly
(:mod:`.planning`), choosing by sharpened Thompson sampling."""

from __future__ import annotations

import contextlib
import functools
import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from bot.engine.community import CommunityPrior
from bot.engine.learners.base import Progress, Rewards
from bot.engine.learners.dyna import scalar
from bot.engine.learners.dyna.forgetting import (
    REWARD_SUM,
    VISITS,
    fresh_memory,
    observe_batch,
)
from bot.engine.learners.dyna.params import DynaParams, RewardScale
from bot.engine.learners.dyna.planning import solve
from bot.engine.learners.dyna.posterior import (
    Posterior,
    draw_row,
    mean_reward,
    pick_best,
    posterior,
)
from bot.engine.logs import TrainingLog
from bot.engine.qlearning import (
    MEMORY_PLANES,
    BatchState,
    LearnerState,
    remap_state,
)

ChainKey = tuple[bytes, bytes, bytes, bytes | None, float]
CHAIN_CACHE = 1024
"""Listeners whose scalar model :class:`DynaLearner` keeps between steps."""

NEW_EPSILON = 1.0
"""``epsilon`` of a new listener: it observes exploration and nothing is known yet."""


def _chain_key(state: LearnerState) -> ChainKey:
    """Everything a :class:`.scalar.Chain` is built from, as bytes (fast to compare)."""
    memory = None if state.memory is None else state.memory.tobytes()
    return (
        state.q.tobytes(),
        state.visits.tobytes(),
        state.reward_sum.tobytes(),
        memory,
        float(state.epsilon),
    )


@functools.lru_cache(maxsize=32)
def prior_q(n_genres: int, params: DynaParams, scale: RewardScale) -> np.ndarray:
    """Q of the model with no data (every genre at the prior's mean), computed once."""
    zeros = np.zeros((n_genres, n_genres))
    q = solve(zeros, mean_reward(posterior(zeros, zeros, params, scale), scale), params.gamma)
    q.flags.writeable = False  # shared: callers copy it into their own table
    return q


class DynaLearner:
    """Dyna-Q on a pooled Bayesian reward model, choosing by Thompson sampling."""

    name = "dyna"
    params_type = DynaParams

    def __init__(self, params: DynaParams | None = None, *, rewards: Rewards | None = None) -> None:
        """``rewards=(dislike, like)`` sets the model's reward range (default −5/+10)."""
        self.params = params or DynaParams()
        self.scale = RewardScale.of(rewards)
        self._c = scalar.consts(self.params, self.scale)
        # The posterior after an update is the one the next select needs; computing it
        # is most of a step's cost, so the last one is kept (a cache, not state: it is
        # only reused for counts equal to the ones it was computed from, and replaced,
        # never mutated, so threads sharing the learner only cost each other misses).
        self._last: tuple[np.ndarray, np.ndarray, Posterior] | None = None
        # The same for one listener: the scalar model and plan after its last step.
        self._chains: OrderedDict[ChainKey, scalar.Chain] = OrderedDict()

    def __getstate__(self) -> dict[str, object]:
        """The caches stay behind when the learner is sent to a worker process."""
        return {**self.__dict__, "_last": None, "_chains": OrderedDict()}

    # --- one listener -------------------------------------------------------------
    uses_community_prior = True  # initial_state/init_batch take a CommunityPrior

    @property
    def reward_range(self) -> Rewards:
        return self.scale.low, self.scale.high

    def initial_state(self, n_genres: int, prior: CommunityPrior | None = None) -> LearnerState:
        """A new listener's table is the prior model's fixed point, not zeros.

        Otherwise the first reaction, even a 👎, would lift every value from 0 to the
        prior's level (about +70 with the defaults) and ``/qtable`` would show a jump.
        A community ``prior`` starts the working memory with its pseudo-reactions (the
        listener's own history, ``visits``, stays empty).
        """
        state = LearnerState.fresh(n_genres, NEW_EPSILON)
        state.q[...] = prior_q(n_genres, self.params, self.scale)
        if prior is None:
            return state  # memory is made from the history at the first reaction
        state.memory = np.zeros((MEMORY_PLANES, n_genres, n_genres))
        self._add_prior(state.memory, prior)
        state.q[...] = self._planned(np.zeros((n_genres, n_genres)), *self._counts(state))
        return state

    def _add_prior(self, memory: np.ndarray, prior: CommunityPrior, sign: float = 1.0) -> None:
        """Pseudo-reactions at the prior's mean, spread evenly over the current genres so
        they inform the pooled reward and never look like a taste of one row."""
        n = memory.shape[-1]
        if prior.mean.shape != (n,):
            raise ValueError(f"prior has {prior.mean.size} genres, the table {n}")
        per_cell = sign * prior.strength / n
        memory[VISITS] += per_cell[np.newaxis, :]
        memory[REWARD_SUM] += (per_cell * (self.scale.low + self.scale.span * prior.mean))[
            np.newaxis, :
        ]

    def replace_prior(
        self, state: LearnerState, old: CommunityPrior | None, new: CommunityPrior | None
    ) -> None:
        """:meth:`replace_priors` for one listener (the bot, after a newcomer's reaction)."""
        if state.memory is None:
            state.memory = fresh_memory(state.visits, state.reward_sum)
        one = BatchState(
            state.q[None], np.array([state.epsilon]), state.visits[None],
            state.reward_sum[None], state.memory[None],
        )  # fmt: skip
        self.replace_priors(one, [old], [new])  # views: writes go to ``state``

    def replace_priors(
        self,
        bs: BatchState,
        old: Sequence[CommunityPrior | None],
        new: Sequence[CommunityPrior | None],
    ) -> None:
        """Swap listener i's community pseudo-reactions ``old[i]`` for ``new[i]`` (a mixture
        prior re-weighed by their own reactions) and re-plan those tables."""
        if bs.memory is None:
            bs.memory = fresh_memory(bs.visits, bs.reward_sum)
        some = [i for i, (o, p) in enumerate(zip(old, new, strict=True)) if o is not p]
        for i in some:
            before, after = old[i], new[i]
            if before is not None:
                self._add_prior(bs.memory[i], before, -1.0)
            if after is not None:
                self._add_prior(bs.memory[i], after)
            np.maximum(bs.memory[i, VISITS], 0.0, out=bs.memory[i, VISITS])
        if some:
            mem = bs.memory[some]
            bs.q[some] = self._planned(bs.q[some], mem[:, VISITS], mem[:, REWARD_SUM])

    @staticmethod
    def _counts(state: LearnerState) -> tuple[np.ndarray, np.ndarray]:
        """The counts the model is built on: the working memory, or the history."""
        if state.memory is None:
            return state.visits, state.reward_sum
        return state.memory[VISITS], state.memory[REWARD_SUM]

    def adapt(
        self, state: LearnerState, old_genres: Sequence[str], new_genres: Sequence[str]
    ) -> LearnerState:
        """Keep the counts by genre name and re-plan: the table is a function of the counts.

        A zero-filled Q for a new genre would sit far below the planned values (about +70),
        so it would never be drawn until the next reaction re-planned the table; planning
        the remapped counts gives exactly the table a fresh one with the same history has.
        """
        out = remap_state(state, old_genres, new_genres)
        out.q[...] = self._planned(out.q, *self._counts(out))
        return out

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        # Only row s of the sampled Q is needed: r̃(s, ·) + γ·max Q(a, ·). Per cell, which
        # model holds is drawn first, then only that model's Beta (scalar.Chain.draw).
        key, chain = self._chain(state)
        a = chain.draw(s, rng)
        self._keep(key, chain)
        return a

    PROPENSITY_DRAWS = 512

    def selection_probabilities(
        self, state: LearnerState, s: int, rng: np.random.Generator, draws: int | None = None
    ) -> np.ndarray:
        """P(select = a) for every genre a, estimated from ``draws`` Thompson draws of
        row s at once (the same draw as :meth:`select`: which model holds per cell, then
        that model's Beta), for offline evaluation. A chosen genre never gets less than
        1/draws.

        It reads the chain :meth:`select` caches (in the bot it has just been made for
        this state) and draws one Beta per cell, with per-cell parameters: 0.19 ms for
        512 draws, against 0.40-0.47 ms recomputing the posterior and drawing both models.
        """
        k = draws or self.PROPENSITY_DRAWS
        c = self._c
        key, chain = self._chain(state)
        sharp = c.sharpness * (1.0 + c.early * math.exp(-chain.total / c.early_reactions))
        cells = np.array(chain.cells[s])  # (n, 3): own weight, a, b
        pool = np.array([(col.pool_a, col.pool_b) for col in chain.cols]) * sharp
        g_max = np.array(chain.plan.g_max)
        self._keep(key, chain)
        n = len(chain.cols)
        own = rng.random((k, n)) < cells[:, 0]
        x = rng.beta(
            np.where(own, sharp * cells[:, 1], pool[:, 0]),
            np.where(own, sharp * cells[:, 2], pool[:, 1]),
        )
        row = c.span * x + (c.low + g_max)
        counts = np.maximum(np.bincount(row.argmax(axis=1), minlength=n), 1)
        return counts / counts.sum()

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        _, chain = self._chain(state)
        td, _ = chain.observe(s, a, r, s_next)
        state.visits[s, a] += 1
        state.reward_sum[s, a] += r
        chain.write(state)
        self._keep(_chain_key(state), chain)
        return float(td)

    def run_chain_fast(
        self,
        state: LearnerState,
        probs: np.ndarray,
        s: int,
        episodes: int,
        rng: np.random.Generator,
        genres: tuple[str, ...],
        progress: Progress,
    ) -> TrainingLog | None:
        """The generic chain of select and update, fused (:func:`.scalar.run_chain`):
        the same tables and picks, without the per-step round trip through numpy."""
        cls = type(self)
        if cls.select is not DynaLearner.select or cls.update is not DynaLearner.update:
            return None  # a subclass's own rule must run
        _, chain = self._chain(state)
        log = scalar.run_chain(chain, state, probs, s, episodes, rng, genres, progress)
        self._keep(_chain_key(state), chain)
        return log

    def _chain(self, state: LearnerState) -> tuple[ChainKey, scalar.Chain]:
        """The listener's :class:`.scalar.Chain`: the cached one if it was left by a step
        on exactly this state's contents, else one built from the state.

        The cache is keyed by content, not by listener, so it is never stale: a state
        loaded after another process changed it has other contents. It holds the last
        ``CHAIN_CACHE`` states (interleaved listeners in the bot); a chain is taken out
        while in use, so threads sharing the learner never share one.
        """
        key = _chain_key(state)
        chain = self._chains.pop(key, None)
        if chain is None:
            chain = scalar.Chain.of(state, self._c, self.params)
        return key, chain

    def _keep(self, key: ChainKey, chain: scalar.Chain) -> None:
        self._chains[key] = chain
        if len(self._chains) > CHAIN_CACHE:
            with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
                self._chains.popitem(last=False)

    # --- many listeners -----------------------------------------------------------
    def init_batch(
        self,
        n_users: int,
        n_genres: int,
        priors: Sequence[CommunityPrior | None] | None = None,
    ) -> BatchState:
        """Fresh listeners; ``priors`` gives each one's community prior (or None)."""
        bs = BatchState.fresh(n_users, n_genres, NEW_EPSILON)
        bs.q[...] = prior_q(n_genres, self.params, self.scale)
        if priors is not None and any(p is not None for p in priors):
            if len(priors) != n_users:
                raise ValueError(f"{len(priors)} priors for {n_users} listeners")
            bs.memory = np.zeros((n_users, MEMORY_PLANES, n_genres, n_genres))
            for i, prior in enumerate(priors):
                if prior is not None:
                    self._add_prior(bs.memory[i], prior)
            some = [i for i, p in enumerate(priors) if p is not None]
            mem = bs.memory[some]
            bs.q[some] = self._planned(
                np.zeros_like(bs.q[some]), mem[:, VISITS], mem[:, REWARD_SUM]
            )
        return bs

    @staticmethod
    def _batch_counts(bs: BatchState) -> tuple[np.ndarray, np.ndarray]:
        if bs.memory is None:
            return bs.visits, bs.reward_sum
        return bs.memory[:, VISITS], bs.memory[:, REWARD_SUM]

    def select_batch(self, bs: BatchState, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        visits, reward_sum = self._batch_counts(bs)
        post = self._posterior(visits, reward_sum)
        r_row = draw_row(post, visits, s, self.params, self.scale, rng)
        return pick_best(r_row + self.params.gamma * bs.q.max(axis=-1), rng)

    def update_batch(
        self, bs: BatchState, s: np.ndarray, a: np.ndarray, r: np.ndarray, s_next: np.ndarray
    ) -> np.ndarray:
        idx = np.arange(bs.q.shape[0])
        if bs.memory is None:
            bs.memory = fresh_memory(bs.visits, bs.reward_sum)
        explored = bs.q[idx, s, a] < bs.q[idx, s].max(axis=1)
        td = r + self.params.gamma * bs.q[idx, s_next].max(axis=1) - bs.q[idx, s, a]
        bs.visits[idx, s, a] += 1
        bs.reward_sum[idx, s, a] += r
        bs.q[idx, s, a] += td / bs.visits[idx, s, a]
        observe_batch(bs.memory, s, a, r, self.scale.low, self.scale.high, self.params.change)
        bs.q[...] = self._planned(bs.q, bs.memory[:, VISITS], bs.memory[:, REWARD_SUM])
        rate = self.params.explore_rate
        bs.epsilon[...] = (1.0 - rate) * bs.epsilon + rate * explored
        return td

    def _planned(self, q: np.ndarray, visits: np.ndarray, reward_sum: np.ndarray) -> np.ndarray:
        """The model's fixed point for these counts, warm-started by ``q``."""
        r_hat = mean_reward(self._posterior(visits, reward_sum), self.scale)
        return solve(q, r_hat, self.params.gamma)

    def _posterior(self, visits: np.ndarray, reward_sum: np.ndarray) -> Posterior:
        last = self._last
        if (
            last is not None
            and last[0].shape == visits.shape
            and np.array_equal(last[0], visits)
            and np.array_equal(last[1], reward_sum)
        ):
            return last[2]
        post = posterior(visits, reward_sum, self.params, self.scale)
        self._last = (visits.copy(), reward_sum.copy(), post)
        return post
