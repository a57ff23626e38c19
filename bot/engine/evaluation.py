"""How well a learner did against a simulated listener whose model is known.

One definition of each metric for the CLI (``compare``), the benchmarks and the tests:

* **regret** = Σ_t E[r | s_t, π*(s_t)] − E[r | s_t, a_t], the expected reward lost against
  the optimal policy π* (the argmax of Q*, value iteration on the known E[r | s, a] with the
  run's γ). Expected rewards, not the sampled ones, so luck in the draws is not skill.
* **best share**: the share of suggestions that were an optimal genre (Q* ties kept).
* **skip rate**: the share of −5 rewards (the seed's "skip") among the first steps.

Logs are (steps, users) arrays; ``expected`` is one listener's (n, n) E[r | s, a] shared by
every user, or a per-user stack (U, n, n).
"""

from __future__ import annotations

import numpy as np

from bot.engine.listeners import REWARDS, optimal_q

REGRET_DEFINITION = (
    "regret = Σ_t (E[r | s_t, π*(s_t)] − E[r | s_t, a_t]) over the whole run: the expected "
    "reward lost against always suggesting the best genre π*(s) (argmax of Q*, value "
    "iteration with the run's γ)"
)
SKIP = float(REWARDS[0])


def best_actions(expected: np.ndarray, gamma: float) -> np.ndarray:
    """``best[..., s, a]``: True where ``a`` is an optimal suggestion from ``s`` (ties kept)."""
    q_star = _q_star(expected, gamma)
    top = q_star.max(axis=-1, keepdims=True)
    return np.isclose(q_star, top, rtol=1e-9, atol=1e-9)


def optimal_policy(expected: np.ndarray, gamma: float) -> np.ndarray:
    """π*(s): the first optimal genre of each state, shape ``expected.shape[:-1]``."""
    return best_actions(expected, gamma).argmax(axis=-1)


def _q_star(expected: np.ndarray, gamma: float) -> np.ndarray:
    """Q* of one table, or of each of a stack (solved once per distinct table)."""
    if expected.ndim == 2:
        return optimal_q(expected, gamma)
    tables, which = np.unique(expected, axis=0, return_inverse=True)
    return np.stack([optimal_q(e, gamma) for e in tables])[which.reshape(-1)]


def lost_reward(
    states: np.ndarray, actions: np.ndarray, expected: np.ndarray, gamma: float
) -> np.ndarray:
    """Per step and user, E[r | s_t, π*(s_t)] − E[r | s_t, a_t]; its cumulative sum is regret."""
    s, a = states.astype(np.intp), actions.astype(np.intp)
    pi = optimal_policy(expected, gamma)
    if expected.ndim == 2:
        return expected[s, pi[s]] - expected[s, a]
    users = np.arange(s.shape[1])
    return expected[users, s, pi[users, s]] - expected[users, s, a]


def regret(
    states: np.ndarray, actions: np.ndarray, expected: np.ndarray, gamma: float
) -> np.ndarray:
    """Regret of each user over the whole log, shape (U,)."""
    return lost_reward(states, actions, expected, gamma).sum(axis=0)


def optimal_picks(
    states: np.ndarray, actions: np.ndarray, expected: np.ndarray, gamma: float
) -> np.ndarray:
    """Per step and user, whether the suggestion was an optimal genre (Q* ties kept)."""
    s, a = states.astype(np.intp), actions.astype(np.intp)
    best = best_actions(expected, gamma)
    if best.ndim == 2:
        return best[s, a]
    return best[np.arange(s.shape[1]), s, a]


def best_share(
    states: np.ndarray, actions: np.ndarray, expected: np.ndarray, gamma: float
) -> np.ndarray:
    """Share of each user's logged suggestions that were optimal, shape (U,)."""
    return optimal_picks(states, actions, expected, gamma).mean(axis=0)


def skip_rate(rewards: np.ndarray, first: int) -> np.ndarray:
    """Share of −5 rewards among each user's first ``first`` steps, shape (U,)."""
    return (rewards[:first] == SKIP).mean(axis=0)
