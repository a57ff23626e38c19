"""The ``dyna`` learner: the model (:mod:`.posterior`, :mod:`.scalar`), planned exactly
(:mod:`.planning`), choosing by sharpened Thompson sampling."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from bot.engine.community import CommunityPrior
from bot.engine.learners.base import Rewards
from bot.engine.learners.dyna import scalar
from bot.engine.learners.dyna.forgetting import (
    DRIFT,
    REWARD_SUM,
    VISITS,
    evidence_of_fall_scalar,
    forget,
    fresh_memory,
    observe_batch,
)
from bot.engine.learners.dyna.params import DynaParams, RewardScale
from bot.engine.learners.dyna.planning import backup, solve, solve_list
from bot.engine.learners.dyna.posterior import (
    Posterior,
    draw_reward,
    mean_reward,
    posterior,
    sharpness,
)
from bot.engine.qlearning import (
    MEMORY_PLANES,
    BatchState,
    LearnerState,
    greedy_batch,
    remap_state,
)

NEW_EPSILON = 1.0
"""``epsilon`` of a new listener: it observes exploration and nothing is known yet."""


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
        self._cols: scalar.Model | None = None  # the same for the scalar path

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

    def _add_prior(self, memory: np.ndarray, prior: CommunityPrior) -> None:
        """Pseudo-reactions at the prior's mean, spread evenly over the current genres so
        they inform the pooled reward and never look like a taste of one row."""
        n = memory.shape[-1]
        if prior.mean.shape != (n,):
            raise ValueError(f"prior has {prior.mean.size} genres, the table {n}")
        per_cell = prior.strength / n
        memory[VISITS] += per_cell[np.newaxis, :]
        memory[REWARD_SUM] += (per_cell * (self.scale.low + self.scale.span * prior.mean))[
            np.newaxis, :
        ]

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
        # model holds is drawn first, then only that model's Beta.
        c = self._c
        m = self._cols
        visits, reward_sum = self._counts(state)
        vis, rsum = visits.tolist(), reward_sum.tolist()
        if m is None or m.visits != vis or m.reward_sum != rsum:
            m = self._cols = scalar.model(vis, rsum, c)
        sharp = c.sharpness * (1.0 + c.early * math.exp(-m.total / c.early_reactions))
        gamma, low, span = self.params.gamma, c.low, c.span
        beta = rng.beta
        row = []
        us = rng.random(len(m.cols)).tolist()
        for u, col, q_next in zip(us, m.cols, state.q.tolist(), strict=True):
            w, oa, ob = col.cells[s]
            if u < w:
                x = beta(sharp * oa, sharp * ob)
            else:
                x = beta(sharp * col.pool_a, sharp * col.pool_b)
            row.append((low + span * x) + gamma * max(q_next))
        best = max(row)
        if row.count(best) == 1:
            return row.index(best)
        ties = [j for j, x in enumerate(row) if x == best]
        return ties[int(rng.integers(len(ties)))]

    PROPENSITY_DRAWS = 512

    def selection_probabilities(
        self, state: LearnerState, s: int, rng: np.random.Generator, draws: int | None = None
    ) -> np.ndarray:
        """P(select = a) for every genre a, estimated from ``draws`` Thompson draws of
        row s at once (the same draw as :meth:`select`: which model holds per cell, then
        that model's Beta), for offline evaluation. A chosen genre never gets less than
        1/draws."""
        k = draws or self.PROPENSITY_DRAWS
        visits, reward_sum = self._counts(state)
        post = posterior(visits, reward_sum, self.params, self.scale)
        c = float(sharpness(visits, self.params)[0])
        n = state.q.shape[0]
        pool = rng.beta(c * post.pool_a, c * post.pool_b, size=(k, n))
        own = rng.beta(c * post.own_a[s], c * post.own_b[s], size=(k, n))
        x = np.where(rng.random((k, n)) < post.own_weight[s], own, pool)
        row = self.scale.low + self.scale.span * x + self.params.gamma * state.q.max(axis=1)
        counts = np.maximum(np.bincount(row.argmax(axis=1), minlength=n), 1)
        return counts / counts.sum()

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        memory = state.memory
        if memory is None:
            memory = state.memory = fresh_memory(state.visits, state.reward_sum)
        vis, rsum = memory[VISITS].tolist(), memory[REWARD_SUM].tolist()
        c = self._c
        old = self._cols
        if old is None or old.visits != vis or old.reward_sum != rsum:
            old = scalar.model(vis, rsum, c)
        changed = self._detect(memory, s, a, r)
        if changed:
            vis, rsum = memory[VISITS].tolist(), memory[REWARD_SUM].tolist()
        q = state.q.tolist()
        gamma = self.params.gamma
        row = q[s]
        q_sa = row[a]
        explored = q_sa < max(row)
        td = r + gamma * max(q[s_next]) - q_sa
        state.visits[s, a] += 1
        state.reward_sum[s, a] += r
        row[a] = q_sa + td / float(state.visits[s, a])
        vis[s][a] += 1.0
        rsum[s][a] += r
        memory[VISITS, s, a] = vis[s][a]
        memory[REWARD_SUM, s, a] = rsum[s][a]
        m = scalar.model(vis, rsum, c) if changed else scalar.model_step(old, vis, rsum, a, c)
        self._cols = m
        state.q.flat[:] = solve_list(q, m.r_hat, gamma)
        rate = self.params.explore_rate
        state.epsilon = (1.0 - rate) * state.epsilon + rate * explored
        return float(td)

    def _detect(self, memory: np.ndarray, s: int, a: int, r: float) -> bool:
        """Advance cell (s, a)'s change statistic; on a change forget, and say so."""
        cfg, c = self.params.change, self._c
        v = float(memory[VISITS, s, a])
        succ = min(max((float(memory[REWARD_SUM, s, a]) - v * c.low) / c.span, 0.0), v)
        x = min(max((r - c.low) / c.span, 0.0), 1.0)
        drift = memory[DRIFT, s, a] + evidence_of_fall_scalar(1.0 + succ, 1.0 + v - succ, x, cfg)
        if drift > cfg.threshold:
            part = memory[np.newaxis]
            forget(part, np.array([a]), cfg)
            memory[...] = part[0]
            return True
        memory[DRIFT, s, a] = max(0.0, drift)
        return False

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
        r_tilde = draw_reward(post, visits, self.params, self.scale, rng)
        q = backup(bs.q, r_tilde, self.params.gamma)
        return greedy_batch(q[np.arange(q.shape[0]), s], rng)

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
