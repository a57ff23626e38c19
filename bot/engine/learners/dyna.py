"""``dyna``: Q-learning that learns a listener in tens of reactions.

Why it is fast, in three parts, all derived from the stored counts
(``visits``, ``reward_sum``) so nothing is persisted beyond :class:`LearnerState`:

1. **A pooled reward model.** Rewards are rescaled to [0, 1] between the dislike
   and like rewards (exact for 👍/👎) and each genre gets a Beta posterior with
   fractional counts, pooled over all current genres, so one 👍 for Pop informs every
   row. Each cell r(s, a) is either that pooled reward or a taste of its own
   (spike and slab); Beta-binomial evidence decides per cell, so a taste that depends
   on the current genre (Jazz after Classical) takes over after a few reactions in
   that state, while consistent data keep the rows shared.
2. **Dyna planning, solved exactly.** The next genre is the suggested one, so given r̂
   the model is a deterministic MDP on the genres and its optimum is
   Q(s, a) = r̂(s, a) + γ·max Q(a, ·). After the real TD step (step size 1/visits) the
   whole table is set to that fixed point by policy iteration warm-started from the
   greedy policy (:func:`solve`), so Q is on the scale of Q* from the first reaction
   and ``/qtable`` never shows a half-planned table (a few sweeps from Q = 0 left
   values rising after any reaction, 👎 included). Q now moves only as r̂ does; r̂ of
   the reacted cell always moves the reaction's way, but the spike and slab explains
   away: a 👎 for a in one row can make another row's many 👍 for a look more like a
   taste of its own and lift that row's r̂(·, a) (and Q) a little.
3. **Sharpened Thompson selection.** To choose, sample r(s, ·) from the posterior
   (concentrated ×6, and ×180 for a brand-new listener fading over ~20 reactions),
   add the planned γ·max Q, and take the best genre. Real listeners react tens of
   times, so the first suggestions lean on what is already known instead of
   exploring every genre; uncertain genres are still tried while it matters.

``epsilon`` is kept as an observable: an exponential average of how often the
suggestion was not the current greedy genre (1.0 for a new listener, → 0 as it settles).
The array code serves a batch (``(U, n, n)``, and is the reference); one listener takes
a plain-Python path with the same model (tested equal): an update at (s, a) recomputes
only column a's posterior, and a choice draws only row s of the sampled Q.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import add, itemgetter
from typing import NamedTuple, cast

import numpy as np

from bot.engine.community import CommunityPrior
from bot.engine.learners.forgetting import (
    DRIFT,
    REWARD_SUM,
    VISITS,
    ChangeConfig,
    evidence_of_fall_scalar,
    forget,
    fresh_memory,
    observe_batch,
)
from bot.engine.qlearning import (
    MEMORY_PLANES,
    AgentParams,
    BatchState,
    LearnerState,
    greedy,
    greedy_batch,
)


@dataclass(frozen=True, slots=True)
class DynaConfig:
    """Model settings. The reward range is the bot's dislike/like rewards."""

    reward_low: float = -5.0
    reward_high: float = 10.0
    # Prior for each genre's pooled reward on the [0, 1] scale (0.8 ≈ +7): most genres
    # are liked more often than not; 4 pseudo-reactions so one reaction shifts it a bit.
    prior_mean: float = 0.8
    prior_strength: float = 4.0
    # Prior probability that r(s, a) is a taste of its own rather than genre a's pooled
    # reward, and the strength (pseudo-reactions at the pool's mean) of that own taste.
    own_taste_prior: float = 0.5
    slab_strength: float = 2.0
    # Backups of the sampled model when choosing. 1 = sample r(s, ·) and add the planned
    # γ·V; 2 (sampling the future too) measured worse: it adds noise, not information.
    sample_sweeps: int = 1
    # Concentration multiplier for the posterior draw. Plain Thompson (1) over-explores
    # at a horizon of tens of reactions; 4 roughly halved regret@200 in our benchmark.
    # With the exactly solved table 6 measured better (regret@1000 ~275 vs ~295 at 4).
    sharpness: float = 6.0
    # A new listener's draw is concentrated a further ×30 (nearly greedy), fading with an
    # e-folding of 20 reactions: it cut regret@50 by ~20 % at no cost by 1000 steps.
    early_sharpness: float = 30.0
    early_reactions: float = 20.0
    explore_rate: float = 0.1  # smoothing of the observed exploration share (epsilon)
    # Adaptive forgetting: a change detector per cell and what a change forgets
    # (bot.engine.learners.forgetting). threshold=inf turns it off.
    change: ChangeConfig = field(default_factory=ChangeConfig)

    def __post_init__(self) -> None:
        """Reject settings that would put a Beta parameter at 0 (log Γ(0) is infinite)."""
        if not (math.isfinite(self.reward_low) and math.isfinite(self.reward_high)):
            raise ValueError(f"rewards must be finite, got {self.reward_low}, {self.reward_high}")
        if not self.reward_low < self.reward_high:
            raise ValueError(f"reward_low {self.reward_low} must be below {self.reward_high}")
        for name in ("prior_mean", "own_taste_prior", "explore_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)!r}")
        for name in ("prior_strength", "slab_strength", "sharpness", "early_reactions"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.early_sharpness < 1 or self.sample_sweeps < 1:
            raise ValueError("early_sharpness and sample_sweeps must be ≥ 1")


def _success_counts(
    visits: np.ndarray, reward_sum: np.ndarray, cfg: DynaConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional Beta counts: total reward rescaled to [0, 1] per reaction."""
    span = cfg.reward_high - cfg.reward_low
    succ = np.clip((reward_sum - visits * cfg.reward_low) / span, 0.0, visits)
    return succ, visits - succ


def _pooled(succ: np.ndarray, fail: np.ndarray, cfg: DynaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters of each genre's reward pooled over current genres, shape (..., n)."""
    a0 = cfg.prior_strength * cfg.prior_mean
    b0 = cfg.prior_strength * (1.0 - cfg.prior_mean)
    return a0 + succ.sum(axis=-2), b0 + fail.sum(axis=-2)


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log Γ(x) for x > 0: Stirling's series after shifting x up by 6 (error < 1e-10).

    Four correction terms: with three the error reached 1e-7 for small x.
    """
    shift = x * (x + 1) * (x + 2) * (x + 3) * (x + 4) * (x + 5)
    z = x + 6.0
    z2 = z * z
    tail = (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * z2)) / z2) / z2) / z
    series = (z - 0.5) * np.log(z) - z + 0.5 * np.log(2 * np.pi) + tail
    return series - np.log(shift)


@dataclass(frozen=True, slots=True)
class _Posterior:
    """r(s, a) is either its genre's pooled reward (shared) or a taste of its own."""

    pool_a: np.ndarray  # (..., n) Beta of each genre's pooled reward
    pool_b: np.ndarray
    own_a: np.ndarray  # (..., n, n) Beta of r(s, a) if the cell has its own taste
    own_b: np.ndarray
    own_weight: np.ndarray  # (..., n, n) posterior probability of "own taste"


def _posterior(visits: np.ndarray, reward_sum: np.ndarray, cfg: DynaConfig) -> _Posterior:
    """Spike-and-slab pooling: compare how well the pool and an own taste explain a cell.

    The evidence for each is a Beta-binomial marginal likelihood. Two 👎 where the pool
    expects 👍 quickly make the cell its own; agreeing data keep it on the pool, so
    every reaction for a genre informs every row.
    """
    succ, fail = _success_counts(visits, reward_sum, cfg)
    pa, pb = _pooled(succ, fail, cfg)
    ex_a = pa[..., np.newaxis, :] - succ  # the pool without this cell's own data
    ex_b = pb[..., np.newaxis, :] - fail
    m = ex_a / (ex_a + ex_b)
    k = cfg.slab_strength
    own_a, own_b = k * m + succ, k * (1.0 - m) + fail
    # log B(x, y) of the four Beta functions in two _lgamma calls (12 small calls cost
    # 10×). With the cell's data the pool is the full pool: one value per genre.
    lg_pool = _lgamma(np.stack((pa, pb, pa + pb)))
    lg = _lgamma(
        np.stack(
            np.broadcast_arrays(
                ex_a, ex_b, ex_a + ex_b, own_a, own_b, k + visits, k * m, k * (1.0 - m)
            )
        )
    )
    log_pool = (lg_pool[0] + lg_pool[1] - lg_pool[2])[..., np.newaxis, :] - (lg[0] + lg[1] - lg[2])
    log_own = (lg[3] + lg[4] - lg[5]) - (lg[6] + lg[7] - math.lgamma(k))
    prior = np.log(cfg.own_taste_prior / (1.0 - cfg.own_taste_prior))
    weight = 1.0 / (1.0 + np.exp(np.clip(log_pool - log_own - prior, -50, 50)))
    return _Posterior(pa, pb, own_a, own_b, weight)


def _mean_reward(post: _Posterior, cfg: DynaConfig) -> np.ndarray:
    pooled = (post.pool_a / (post.pool_a + post.pool_b))[..., np.newaxis, :]
    own = post.own_a / (post.own_a + post.own_b)
    x = (1.0 - post.own_weight) * pooled + post.own_weight * own
    return cfg.reward_low + (cfg.reward_high - cfg.reward_low) * x


def expected_reward(visits: np.ndarray, reward_sum: np.ndarray, cfg: DynaConfig) -> np.ndarray:
    """Posterior mean reward r̂(s, a) in reward units, shape like ``visits``."""
    return _mean_reward(_posterior(visits, reward_sum, cfg), cfg)


def _sharpness(visits: np.ndarray, cfg: DynaConfig) -> np.ndarray:
    """Posterior concentration multiplier per listener, shape (..., 1)."""
    n = visits.sum(axis=(-2, -1))[..., np.newaxis]
    early = (cfg.early_sharpness - 1.0) * np.exp(-n / cfg.early_reactions)
    return cfg.sharpness * (1.0 + early)


def _draw_reward(
    post: _Posterior, visits: np.ndarray, cfg: DynaConfig, rng: np.random.Generator
) -> np.ndarray:
    c = _sharpness(visits, cfg)
    pooled = rng.beta(c * post.pool_a, c * post.pool_b)[..., np.newaxis, :]
    c2 = c[..., np.newaxis]
    own = rng.beta(c2 * post.own_a, c2 * post.own_b)
    x = np.where(rng.random(own.shape) < post.own_weight, own, pooled)
    return cfg.reward_low + (cfg.reward_high - cfg.reward_low) * x


def sample_reward(
    visits: np.ndarray, reward_sum: np.ndarray, cfg: DynaConfig, rng: np.random.Generator
) -> np.ndarray:
    """One draw of r(s, a): which model holds per cell, then the pool or the cell's own."""
    return _draw_reward(_posterior(visits, reward_sum, cfg), visits, cfg, rng)


def plan(q: np.ndarray, r: np.ndarray, gamma: float, sweeps: int) -> np.ndarray:
    """``sweeps`` exact backups Q(s, a) ← r(s, a) + γ·max Q(a, ·); returns a new array."""
    for _ in range(sweeps):
        q = r + gamma * q.max(axis=-1)[..., np.newaxis, :]
    return q


SOLVE_TOL = 1e-12
"""A policy switches only for a gain above this (no cycling on ties)."""
SOLVE_MAX_ITER = 50
"""Policy-iteration rounds before falling back to value iteration."""


def solve(q: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """The model's fixed point Q = r + γ·max Q(a, ·), exactly; ``q`` (..., n, n) warm-starts.

    The next state is the suggestion, so a policy π is a map s → π(s) and its values
    solve (I − γ P_π) V = r_π. Policy iteration from the greedy policy of ``q`` (batched
    solves) usually stops after one or two rounds; value iteration to convergence is the
    fallback should it not settle.
    """
    n = r.shape[-1]
    eye = np.eye(n)
    pi = q.argmax(axis=-1)
    r_pi_idx = pi[..., np.newaxis]
    for _ in range(SOLVE_MAX_ITER):
        r_pi = np.take_along_axis(r, r_pi_idx, axis=-1)  # (..., n, 1)
        system = eye - gamma * eye[pi]  # row s of P_π is the unit vector of π(s)
        v = np.linalg.solve(system, r_pi)[..., 0]
        qn = r + gamma * v[..., np.newaxis, :]
        best = qn.argmax(axis=-1)
        gain = np.take_along_axis(qn, best[..., np.newaxis], -1) - np.take_along_axis(
            qn, r_pi_idx, -1
        )
        switch = gain[..., 0] > SOLVE_TOL * (1.0 + np.abs(v))
        if not switch.any():
            return qn
        pi = np.where(switch, best, pi)
        r_pi_idx = pi[..., np.newaxis]
    return _value_iterate(qn, r, gamma)


def _value_iterate(q: np.ndarray, r: np.ndarray, gamma: float, tol: float = 1e-13) -> np.ndarray:
    """Backups until the largest change is below ``tol`` (the fallback of :func:`solve`)."""
    for _ in range(100_000):
        new = r + gamma * q.max(axis=-1)[..., np.newaxis, :]
        if np.max(np.abs(new - q), initial=0.0) < tol:
            return new
        q = new
    return q


# --- one listener in plain Python ------------------------------------------------------
# The same model as the array code above, for one (n, n) table. On 5×5 tables numpy's
# per-call overhead (about a microsecond) dominates; plain floats, math.lgamma and lists
# cost tens of nanoseconds. An update at (s, a) changes only column a's counts, and a
# column's posterior depends on nothing else, so only that column is recomputed.


class _Consts(NamedTuple):
    """Per-config constants of the scalar path."""

    low: float
    span: float
    a0: float
    b0: float
    k: float
    lg_k: float
    logit: float
    prior_weight: float  # own_weight of a cell without data: the prior
    sharpness: float
    early: float
    early_reactions: float


def _consts(cfg: DynaConfig) -> _Consts:
    p = cfg.own_taste_prior
    logit = math.log(p / (1.0 - p))
    return _Consts(
        low=cfg.reward_low,
        span=cfg.reward_high - cfg.reward_low,
        a0=cfg.prior_strength * cfg.prior_mean,
        b0=cfg.prior_strength * (1.0 - cfg.prior_mean),
        k=cfg.slab_strength,
        lg_k=math.lgamma(cfg.slab_strength),
        logit=logit,
        prior_weight=1.0 / (1.0 + math.exp(-logit)),
        sharpness=cfg.sharpness,
        early=cfg.early_sharpness - 1.0,
        early_reactions=cfg.early_reactions,
    )


class _Col(NamedTuple):
    """The posterior of one genre's column (suggestion a, every current genre s)."""

    pool_a: float  # Beta of genre a's pooled reward
    pool_b: float
    cells: list[tuple[float, float, float]]  # per s: (own_weight, own_a, own_b)
    r_hat: list[float]  # per s: posterior mean reward, in reward units


def _column(
    vis: Sequence[int],
    rsum: Sequence[float],
    c: _Consts,
    lg: Callable[[float], float] = math.lgamma,
    exp: Callable[[float], float] = math.exp,
) -> _Col:
    """:func:`_posterior` and :func:`expected_reward` of one column, on floats."""
    low, span, k = c.low, c.span, c.k
    succ = []
    ssum = 0.0
    for v, r in zip(vis, rsum, strict=True):
        if v:
            x = (r - v * low) / span
            if x < 0.0:
                x = 0.0
            elif x > v:
                x = v + 0.0
            ssum += x
        else:
            x = 0.0
        succ.append(x)
    pa = c.a0 + ssum
    pb = c.b0 + (sum(vis) - ssum)
    pm = pa / (pa + pb)
    r_pool = low + span * pm
    # z = log evidence(pool) − log evidence(own) − prior log-odds, per cell (_posterior)
    z0 = lg(pa) + lg(pb) - lg(pa + pb) - c.lg_k - c.logit
    unseen = (c.prior_weight, k * pm, k * (1.0 - pm))  # no data: both models are the pool
    cells = []
    r_hat = []
    for v, x in zip(vis, succ, strict=True):
        if v:
            f = v - x
            ea = pa - x  # the pool without this cell's own data
            eb = pb - f
            t = ea + eb
            m = ea / t
            km = k * m
            kn = k * (1.0 - m)
            oa = km + x
            ob = kn + f
            kv = k + v
            z = z0 - lg(ea) - lg(eb) + lg(t) - lg(oa) - lg(ob) + lg(kv) + lg(km) + lg(kn)
            w = 1.0 / (1.0 + exp(50.0 if z > 50.0 else (-50.0 if z < -50.0 else z)))
            cells.append((w, oa, ob))
            r_hat.append(low + span * (pm + w * (oa / kv - pm)))
        else:
            cells.append(unseen)
            r_hat.append(r_pool)
    return _Col(pa, pb, cells, r_hat)


class _Model(NamedTuple):
    """The posterior of one listener's counts (a cache entry: never mutated)."""

    visits: list[list[int]]  # the counts it was computed from
    reward_sum: list[list[float]]
    total: int  # reactions so far
    cols: list[_Col]
    r_hat: list[float]  # posterior mean reward, row-major (n·n)


def _model(vis: list[list[int]], rsum: list[list[float]], c: _Consts) -> _Model:
    cols = [
        _column(v, r, c)
        for v, r in zip(zip(*vis, strict=True), zip(*rsum, strict=True), strict=True)
    ]
    r_hat = [x for row in zip(*(col.r_hat for col in cols), strict=True) for x in row]
    return _Model(vis, rsum, sum(map(sum, vis)), cols, r_hat)


def _model_step(
    old: _Model, vis: list[list[int]], rsum: list[list[float]], a: int, c: _Consts
) -> _Model:
    """``old`` after one reaction at column ``a`` (``vis``, ``rsum`` already counted)."""
    get = itemgetter(a)
    col = _column(list(map(get, vis)), list(map(get, rsum)), c)
    cols = old.cols.copy()
    cols[a] = col
    r_hat = old.r_hat.copy()
    r_hat[a :: len(cols)] = col.r_hat
    return _Model(vis, rsum, old.total + 1, cols, r_hat)


def _evaluate(pi: list[int], r_pi: list[float], gamma: float) -> list[float]:
    """V of the policy s → π(s): V(s) = r_π(s) + γ·V(π(s)), on its functional graph.

    Following s → π(s) → … ends on a cycle c_0 … c_{L−1}; there
    V(c_0) = Σ_k γ^k r_π(c_k) / (1 − γ^L), and the rest follows backwards.
    """
    n = len(pi)
    v: list[float | None] = [None] * n
    for start in range(n):
        if v[start] is not None:
            continue
        path: list[int] = []
        on_path: dict[int, int] = {}
        x = start
        while v[x] is None and x not in on_path:
            on_path[x] = len(path)
            path.append(x)
            x = pi[x]
        if v[x] is None:  # closed a new cycle: path[on_path[x]:]
            cycle = path[on_path[x] :]
            del path[on_path[x] :]
            total, g = 0.0, 1.0
            for c in cycle:
                total += g * r_pi[c]
                g *= gamma
            value = v[x] = total / (1.0 - g)
            for c in reversed(cycle[1:]):
                value = v[c] = r_pi[c] + gamma * value
        value = cast(float, v[x])  # solved: on a cycle closed above, or an earlier path
        for c in reversed(path):
            value = v[c] = r_pi[c] + gamma * value
    return v  # type: ignore[return-value]


def _solve_list(q: list[list[float]], r_hat: list[float], gamma: float) -> list[float]:
    """:func:`solve` for one n×n list table: row-major r̂ and result, warm-started by q."""
    n = len(q)
    rows = [r_hat[i : i + n] for i in range(0, n * n, n)]
    pi = [row.index(max(row)) for row in q]
    for _ in range(SOLVE_MAX_ITER):
        v = _evaluate(pi, [row[p] for row, p in zip(rows, pi, strict=True)], gamma)
        gv = [gamma * x for x in v]
        stable = True
        for s, row in enumerate(rows):
            qs = list(map(add, row, gv))
            best = max(qs)
            if best - qs[pi[s]] > SOLVE_TOL * (1.0 + abs(v[s])):
                pi[s] = qs.index(best)
                stable = False
        if stable:
            return list(map(add, r_hat, gv * n))
    r = np.reshape(r_hat, (n, n))
    return _value_iterate(r + gamma * np.asarray(v), r, gamma).ravel().tolist()


def scalar_posterior(
    visits: np.ndarray, reward_sum: np.ndarray, cfg: DynaConfig
) -> tuple[_Posterior, np.ndarray]:
    """The scalar path's posterior of an (n, n) table and r̂, as arrays (for checking)."""
    m = _model(visits.tolist(), reward_sum.tolist(), _consts(cfg))
    cells = np.array([col.cells for col in m.cols]).transpose(1, 0, 2)  # (s, a, 3)
    post = _Posterior(
        pool_a=np.array([col.pool_a for col in m.cols]),
        pool_b=np.array([col.pool_b for col in m.cols]),
        own_a=cells[..., 1],
        own_b=cells[..., 2],
        own_weight=cells[..., 0],
    )
    return post, np.array(m.r_hat).reshape(len(m.cols), -1)


@functools.lru_cache(maxsize=32)
def _prior_q(n_genres: int, cfg: DynaConfig, gamma: float) -> np.ndarray:
    """Q of the model with no data (every genre at the prior's mean), computed once."""
    zeros = np.zeros((n_genres, n_genres))
    q = solve(zeros, expected_reward(zeros, zeros, cfg), gamma)
    q.flags.writeable = False  # shared: callers copy it into their own table
    return q


class DynaLearner:
    """Dyna-Q on a pooled Bayesian reward model, choosing by Thompson sampling."""

    name = "dyna"

    uses_reward_range = True  # make_learner passes the bot's (dislike, like) rewards

    def __init__(
        self,
        params: AgentParams | None = None,
        config: DynaConfig | None = None,
        *,
        rewards: tuple[float, float] | None = None,
    ) -> None:
        """``rewards=(dislike, like)`` sets the model's reward range (default −5/+10)."""
        self.params = params or AgentParams()
        config = config or DynaConfig()
        if rewards is not None:
            low, high = rewards
            config = replace(config, reward_low=float(low), reward_high=float(high))
        self.config = config
        self._c = _consts(config)
        # The posterior after an update is the one the next select needs; computing it
        # is most of a step's cost, so the last one is kept (a cache, not state: it is
        # only reused for counts equal to the ones it was computed from, and replaced,
        # never mutated, so threads sharing the learner only cost each other misses).
        self._last: tuple[np.ndarray, np.ndarray, _Posterior] | None = None
        self._cols: _Model | None = None  # the same for the scalar path

    # --- one listener -------------------------------------------------------------
    uses_community_prior = True  # initial_state/init_batch take a CommunityPrior

    @property
    def reward_range(self) -> tuple[float, float]:
        return self.config.reward_low, self.config.reward_high

    def initial_state(self, n_genres: int, prior: CommunityPrior | None = None) -> LearnerState:
        """A new listener's table is the prior model's fixed point, not zeros.

        Otherwise the first reaction, even a 👎, would lift every value from 0 to the
        prior's level (about +70 with the defaults) and ``/qtable`` would show a jump.
        A community ``prior`` starts the working memory with its pseudo-reactions (the
        listener's own history, ``visits``, stays empty).
        """
        state = LearnerState.fresh(n_genres, self.params.epsilon)
        state.q[...] = self._prior_q(n_genres)
        if prior is None:
            return state  # memory is made from the history at the first reaction
        state.memory = np.zeros((MEMORY_PLANES, n_genres, n_genres))
        self._add_prior(state.memory, prior)
        r_hat = expected_reward(state.memory[VISITS], state.memory[REWARD_SUM], self.config)
        state.q[...] = solve(np.zeros((n_genres, n_genres)), r_hat, self.params.gamma)
        return state

    def _add_prior(self, memory: np.ndarray, prior: CommunityPrior) -> None:
        """Pseudo-reactions at the prior's mean, spread evenly over the current genres so
        they inform the pooled reward and never look like a taste of one row."""
        n = memory.shape[-1]
        if prior.mean.shape != (n,):
            raise ValueError(f"prior has {prior.mean.size} genres, the table {n}")
        per_cell = prior.strength / n
        memory[VISITS] += per_cell[np.newaxis, :]
        memory[REWARD_SUM] += (per_cell * (self._c.low + self._c.span * prior.mean))[np.newaxis, :]

    @staticmethod
    def _counts(state: LearnerState) -> tuple[np.ndarray, np.ndarray]:
        """The counts the model is built on: the working memory, or the history."""
        if state.memory is None:
            return state.visits, state.reward_sum
        return state.memory[VISITS], state.memory[REWARD_SUM]

    def select(self, state: LearnerState, s: int, rng: np.random.Generator) -> int:
        if self.config.sample_sweeps != 1:
            row = self._sampled_q(state.q, *self._counts(state), rng)[s]
            return greedy(row, rng)
        # Only row s of the sampled Q is needed: r̃(s, ·) + γ·max Q(a, ·). Per cell, which
        # model holds is drawn first, then only that model's Beta.
        c = self._c
        m = self._cols
        visits, reward_sum = self._counts(state)
        vis, rsum = visits.tolist(), reward_sum.tolist()
        if m is None or m.visits != vis or m.reward_sum != rsum:
            m = self._cols = _model(vis, rsum, c)
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

    def update(self, state: LearnerState, s: int, a: int, r: float, s_next: int) -> float:
        memory = state.memory
        if memory is None:
            memory = state.memory = fresh_memory(state.visits, state.reward_sum)
        vis, rsum = memory[VISITS].tolist(), memory[REWARD_SUM].tolist()
        c = self._c
        old = self._cols
        if old is None or old.visits != vis or old.reward_sum != rsum:
            old = _model(vis, rsum, c)
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
        m = _model(vis, rsum, c) if changed else _model_step(old, vis, rsum, a, c)
        self._cols = m
        state.q.flat[:] = _solve_list(q, m.r_hat, gamma)
        rate = self.config.explore_rate
        state.epsilon = (1.0 - rate) * state.epsilon + rate * explored
        return float(td)

    def _detect(self, memory: np.ndarray, s: int, a: int, r: float) -> bool:
        """Advance cell (s, a)'s change statistic; on a change forget, and say so."""
        cfg, c = self.config.change, self._c
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
        bs = BatchState.fresh(n_users, n_genres, self.params.epsilon)
        bs.q[...] = self._prior_q(n_genres)
        if priors is not None and any(p is not None for p in priors):
            bs.memory = np.zeros((n_users, MEMORY_PLANES, n_genres, n_genres))
            if len(priors) != n_users:
                raise ValueError(f"{len(priors)} priors for {n_users} listeners")
            for i, prior in enumerate(priors):
                if prior is not None:
                    self._add_prior(bs.memory[i], prior)
            some = [i for i, p in enumerate(priors) if p is not None]
            if some:
                mem = bs.memory[some]
                r_hat = expected_reward(mem[:, VISITS], mem[:, REWARD_SUM], self.config)
                bs.q[some] = solve(np.zeros_like(r_hat), r_hat, self.params.gamma)
        return bs

    @staticmethod
    def _batch_counts(bs: BatchState) -> tuple[np.ndarray, np.ndarray]:
        if bs.memory is None:
            return bs.visits, bs.reward_sum
        return bs.memory[:, VISITS], bs.memory[:, REWARD_SUM]

    def _prior_q(self, n_genres: int) -> np.ndarray:
        return _prior_q(n_genres, self.config, self.params.gamma)

    def select_batch(self, bs: BatchState, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = self._sampled_q(bs.q, *self._batch_counts(bs), rng)
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
        low, high = self.reward_range
        observe_batch(bs.memory, s, a, r, low, high, self.config.change)
        bs.q[...] = self._planned(bs.q, bs.memory[:, VISITS], bs.memory[:, REWARD_SUM])
        rate = self.config.explore_rate
        bs.epsilon[...] = (1.0 - rate) * bs.epsilon + rate * explored
        return td

    # --- shared ---------------------------------------------------------------------
    def _posterior(self, visits: np.ndarray, reward_sum: np.ndarray) -> _Posterior:
        last = self._last
        if (
            last is not None
            and last[0].shape == visits.shape
            and np.array_equal(last[0], visits)
            and np.array_equal(last[1], reward_sum)
        ):
            return last[2]
        post = _posterior(visits, reward_sum, self.config)
        self._last = (visits.copy(), reward_sum.copy(), post)
        return post

    def _planned(self, q: np.ndarray, visits: np.ndarray, reward_sum: np.ndarray) -> np.ndarray:
        r_hat = _mean_reward(self._posterior(visits, reward_sum), self.config)
        return solve(q, r_hat, self.params.gamma)

    def _sampled_q(
        self, q: np.ndarray, visits: np.ndarray, reward_sum: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        post = self._posterior(visits, reward_sum)
        r_tilde = _draw_reward(post, visits, self.config, rng)
        return plan(q, r_tilde, self.params.gamma, self.config.sample_sweeps)
