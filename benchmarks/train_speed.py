"""Training speed: the seed's style of loop vs qtune's trainers (issue 2).

    uv run python benchmarks/train_speed.py [--steps 200000] [--users 10000]
                                            [--batch-steps 200] [--repeat 3]

All runs train pop_lover with the seed's parameters, in one process:

* **reference**: a loop in the seed notebook's style, written here as the baseline:
  numpy scalar indexing and ``np.random`` calls on every step, ``np.argmax`` for the
  greedy pick, Python lists for the logs. (Its reward draw is a threshold test on
  ``np.random.rand()``, the cheapest seed-style draw, so the baseline is not made
  slow on purpose.)
* **run_chain**: the project's single-chain trainer (``bot.training.run_chain``,
  which takes its plain-Python fast path for the seed learner).
* **train_batch**: the batched trainer, ``--users`` independent chains at once, in
  user-steps per second.

Each is timed ``--repeat`` times and the best time is kept (the machine is shared;
the best run is the least disturbed one). Targets: run_chain ≥ 5×, train_batch ≥ 50×.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.agent import AgentParams
from bot.batch import train_batch
from bot.learners import SeedLearner
from bot.simulator import BUILTIN_PROFILES, resolve_user
from bot.training import run_chain

USER = "pop_lover"
GENRES = ["Pop", "Rock", "Jazz", "Classical", "HipHop"]
CHAIN_TARGET = 5.0
BATCH_TARGET = 50.0


def reference_chain(steps: int, seed: int) -> float:
    """The seed notebook's loop: per-step numpy scalar calls. Returns the mean reward."""
    np.random.seed(seed)
    prefs = BUILTIN_PROFILES[USER]
    n = len(GENRES)
    q_table = np.zeros((n, n))
    alpha, gamma, epsilon, decay, epsilon_min = 0.1, 0.9, 1.0, 0.995, 0.1
    rewards, actions, epsilons = [], [], []
    state = np.random.randint(n)
    for _ in range(steps):
        if np.random.rand() < epsilon:  # noqa: SIM108 (the notebook's shape)
            action = np.random.randint(n)
        else:
            action = np.argmax(q_table[state])
        p = prefs[GENRES[action]]
        u = np.random.rand()
        if u < 0.2 * (1 - p):
            reward = -5
        elif u < 0.5 * (1 - p):
            reward = 1
        else:
            reward = 10
        best_next = np.max(q_table[action])
        q_table[state, action] += alpha * (reward + gamma * best_next - q_table[state, action])
        epsilon = max(epsilon_min, epsilon * decay)
        rewards.append(reward)
        actions.append(action)
        epsilons.append(epsilon)
        state = action
    return float(np.mean(rewards))


def project_chain(steps: int, seed: int) -> float:
    log = run_chain(
        SeedLearner(AgentParams()), resolve_user(USER), steps, np.random.default_rng(seed)
    )
    return log.mean_reward


def project_batch(users: int, steps: int, seed: int) -> float:
    probs = resolve_user(USER).reward_probs()
    log = train_batch(SeedLearner(AgentParams()), probs, users, steps, np.random.default_rng(seed))
    return float(log.rewards.mean())


def best_time(run: Callable[[], float], repeat: int) -> tuple[float, float]:
    """The fastest of ``repeat`` runs, and that run's mean reward (a sanity check)."""
    best, value = float("inf"), 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200_000, help="steps of the single chains")
    ap.add_argument("--users", type=int, default=10_000, help="users of the batched trainer")
    ap.add_argument("--batch-steps", type=int, default=200, help="steps per batched user")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs each; best is kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t_ref, r_ref = best_time(lambda: reference_chain(args.steps, args.seed), args.repeat)
    t_chain, r_chain = best_time(lambda: project_chain(args.steps, args.seed), args.repeat)
    t_batch, r_batch = best_time(
        lambda: project_batch(args.users, args.batch_steps, args.seed), args.repeat
    )
    ref = args.steps / t_ref
    chain = args.steps / t_chain
    batch = args.users * args.batch_steps / t_batch
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    print(f"train_speed · {USER} · {today} · best of {args.repeat}")
    print(f"  reference (seed-style loop)  {ref:>12,.0f} steps/s       mean reward {r_ref:.2f}")
    print(f"  run_chain (project)          {chain:>12,.0f} steps/s       mean reward {r_chain:.2f}")
    print(
        f"  train_batch ({args.users:,} users)  {batch:>12,.0f} user-steps/s  "
        f"mean reward {r_batch:.2f} ({args.batch_steps} steps each)"
    )
    ok_chain, ok_batch = chain / ref >= CHAIN_TARGET, batch / ref >= BATCH_TARGET
    print(
        f"  run_chain / reference   = {chain / ref:5.1f}×  (target ≥ {CHAIN_TARGET:g}×: "
        f"{'met' if ok_chain else 'MISSED'})"
    )
    print(
        f"  train_batch / reference = {batch / ref:5.1f}×  (target ≥ {BATCH_TARGET:g}×: "
        f"{'met' if ok_batch else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
