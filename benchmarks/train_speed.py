"""Training speed: the seed's style of loop vs qtune's trainers (issue 2).

    uv run python benchmarks/train_speed.py [--steps 200000] [--users 10000]
                                            [--batch-steps 200] [--repeat 3]

All runs train pop_lover with the seed's parameters, in one process:

* **reference**: a loop in the seed notebook's style, written here as the baseline:
  numpy scalar indexing and ``np.random`` calls on every step, ``np.argmax`` for the
  greedy pick, Python lists for the logs. (Its reward draw is a threshold test on
  ``np.random.rand()``, the cheapest seed-style draw, so the baseline is not made
  slow on purpose.)
* **run_chain**: the project's single-chain trainer (``bot.engine.training.run_chain``,
  which takes its plain-Python fast path for the seed learner).
* **run_chain (dyna)**: the same trainer with the default learner, ``dyna`` (what
  ``simulate`` and ``/simulate`` run), on ``--dyna-steps`` steps.
* **train_batch**: the batched trainer, ``--users`` independent chains at once, in
  user-steps per second.

Each is timed ``--repeat`` times and the best time is kept. Rates are per second of
CPU time of this process (``time.process_time``), which other jobs on a shared machine
barely disturb; the wall-clock rates are printed too. Everything here is single-threaded.
Targets: run_chain ≥ 5×, train_batch ≥ 50×, dyna's run_chain ≥ 0.5× and a
100,000-step ``/simulate`` (dyna's ``run_chain`` on pop_lover) under 2 s of CPU (issue 14).
:func:`learner_speed` is the part about the default learner; ``e2e_load.py`` prints it too,
so one command reports the floor ratio, the scaling table and the learner's speed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from bot.engine.batch_training import train_batch
from bot.engine.learners import SeedLearner, SeedParams, make_learner
from bot.engine.listeners import BUILTIN_PROFILES, resolve_user
from bot.engine.training import run_chain

USER = "pop_lover"
GENRES = ["Pop", "Rock", "Jazz", "Classical", "HipHop"]
CHAIN_TARGET = 5.0
BATCH_TARGET = 50.0
DYNA_TARGET = 0.5
SIMULATE_EPISODES = 100_000  # the most /simulate allows
SIMULATE_TARGET_S = 2.0


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
        SeedLearner(SeedParams()), resolve_user(USER), steps, np.random.default_rng(seed)
    )
    return log.mean_reward


def dyna_chain(steps: int, seed: int) -> float:
    log = run_chain(make_learner("dyna"), resolve_user(USER), steps, np.random.default_rng(seed))
    return log.mean_reward


def project_batch(users: int, steps: int, seed: int) -> float:
    probs = resolve_user(USER).reward_probs()
    log = train_batch(SeedLearner(SeedParams()), probs, users, steps, np.random.default_rng(seed))
    return float(log.rewards.mean())


def best_time(run: Callable[[], float], repeat: int) -> tuple[float, float, float]:
    """The least CPU time and least wall time of ``repeat`` runs, and the mean reward."""
    cpu, wall, value = float("inf"), float("inf"), 0.0
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        value = run()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu, wall, value


@dataclass(frozen=True)
class LearnerSpeed:
    """The default learner's speed against the seed-style loop, measured side by side."""

    reference: float  # steps per CPU second
    dyna: float  # steps per CPU second
    simulate_s: float  # CPU seconds of one run_chain of ``simulate_episodes`` steps
    simulate_episodes: int = SIMULATE_EPISODES

    @property
    def ratio(self) -> float:
        return self.dyna / self.reference

    def lines(self) -> list[str]:
        return [
            f"  reference (seed-style loop) {self.reference:>11,.0f} steps/s",
            f"  run_chain (dyna, default)   {self.dyna:>11,.0f} steps/s",
            ratio_line("dyna run_chain / reference", self.ratio, DYNA_TARGET),
            simulate_line(self.simulate_s, self.simulate_episodes),
        ]


def ratio_line(label: str, ratio: float, target: float) -> str:
    verdict = "met" if ratio >= target else "MISSED"
    return f"  {label:<26} = {ratio:6.2f}×  (target ≥ {target:g}×: {verdict})"


def simulate_line(seconds: float, episodes: int = SIMULATE_EPISODES) -> str:
    """The /simulate figure; the 2 s target is for the largest /simulate only."""
    if episodes != SIMULATE_EPISODES:
        return f"  a {episodes:,}-step /simulate (dyna): {seconds:.2f} s of CPU"
    verdict = "met" if seconds < SIMULATE_TARGET_S else "MISSED"
    return (
        f"  a {episodes:,}-step /simulate (dyna): {seconds:.2f} s of CPU "
        f"(target < {SIMULATE_TARGET_S:g} s: {verdict})"
    )


def learner_speed(
    steps: int = 200_000,
    dyna_steps: int = 20_000,
    repeat: int = 3,
    seed: int = 0,
    simulate_episodes: int = SIMULATE_EPISODES,
) -> LearnerSpeed:
    """The reference loop and dyna's chain, best CPU time of ``repeat`` each, and one
    ``/simulate``-sized dyna chain (best of ``repeat`` too)."""
    ref = best_time(lambda: reference_chain(steps, seed), repeat)[0]
    dyna = best_time(lambda: dyna_chain(dyna_steps, seed), repeat)[0]
    sim = best_time(lambda: dyna_chain(simulate_episodes, seed), repeat)[0]
    return LearnerSpeed(steps / ref, dyna_steps / dyna, sim, simulate_episodes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200_000, help="steps of the single chains")
    ap.add_argument("--users", type=int, default=10_000, help="users of the batched trainer")
    ap.add_argument("--batch-steps", type=int, default=200, help="steps per batched user")
    ap.add_argument("--dyna-steps", type=int, default=20_000, help="steps of the dyna chain")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs each; best is kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    runs = {
        "reference (seed-style loop)": (
            args.steps,
            best_time(lambda: reference_chain(args.steps, args.seed), args.repeat),
        ),
        "run_chain (project)": (
            args.steps,
            best_time(lambda: project_chain(args.steps, args.seed), args.repeat),
        ),
        "run_chain (dyna, default)": (
            args.dyna_steps,
            best_time(lambda: dyna_chain(args.dyna_steps, args.seed), args.repeat),
        ),
        f"train_batch ({args.users:,} users)": (
            args.users * args.batch_steps,
            best_time(lambda: project_batch(args.users, args.batch_steps, args.seed), args.repeat),
        ),
    }
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    print(f"train_speed · {USER} · {today} · best of {args.repeat} · rates per CPU second")
    rates = []
    for label, (steps, (cpu, wall, reward)) in runs.items():
        rates.append(steps / cpu)
        unit = "user-steps/s" if label.startswith("train_batch") else "steps/s"
        print(
            f"  {label:<28} {steps / cpu:>11,.0f} {unit:<12} (wall {steps / wall:>11,.0f})"
            f"  mean reward {reward:.2f}"
        )
    ref, chain, dyna, batch = rates
    print(f"  (train_batch: {args.batch_steps} steps for each of {args.users:,} users)")
    for label, ratio, target in (
        ("run_chain / reference", chain / ref, CHAIN_TARGET),
        ("train_batch / reference", batch / ref, BATCH_TARGET),
        ("dyna run_chain / reference", dyna / ref, DYNA_TARGET),
    ):
        print(ratio_line(label, ratio, target))
    sim = best_time(lambda: dyna_chain(SIMULATE_EPISODES, args.seed), args.repeat)[0]
    print(simulate_line(sim))
    return 0


if __name__ == "__main__":
    sys.exit(main())
