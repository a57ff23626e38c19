"""Learning quality of the learners, side by side (issue 6).

    uv run python benchmarks/learning_quality.py [--seeds 200] [--steps 1000]

Every learner trains ``--seeds`` independent listeners on each profile (the 5
built-ins, plus ``--profiles`` random ones from ``--profile-seed``, every other one
with state-dependent taste), all at once through the batched trainer. The metrics
are means over profiles and seeds; the targets are checked on the generated set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.engine.batch_training import train_batch
from bot.engine.learners import DEFAULT_LEARNER, LEARNERS, BatchLearner, make_learner
from bot.engine.listeners import BUILTIN_PROFILES, SimulatedUser, optimal_q, resolve_user
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.random_listeners import DEFAULT_MIN_GAP, policy_gap, random_profiles

GAMMA = 0.9
REGRET_AT = (50, 200, 1000)
NEG_AT = (20, 50)
LAST = 100
REGRET_DEFINITION = (
    "regret = Σ_t E[r | s_t, π*(s_t)] − E[r | s_t, a_t], π* = argmax of Q* (value iteration, γ=0.9)"
)


@dataclass(frozen=True)
class Case:
    """One listener to learn: its reward tensor and what the optimum does."""

    name: str
    probs: np.ndarray  # P[s, a, k]
    expected: np.ndarray  # E[r | s, a]
    policy: np.ndarray  # π*(s)


def make_case(user: SimulatedUser, genres: Sequence[str] = DEFAULT_GENRES) -> Case:
    expected = user.expected_rewards(genres)
    policy = np.argmax(optimal_q(expected, GAMMA), axis=1)
    return Case(user.name, user.reward_probs(genres), expected, policy)


@dataclass(frozen=True)
class Metrics:
    """Means over every run of a profile set (each profile weighs the same)."""

    regret: dict[int, float]
    neg_share: dict[int, float]
    best_share_last: float
    greedy_optimal: float
    per_case: dict[str, tuple[float, float]]  # name -> (final regret, -5 share@20)


def run_cases(
    learner: BatchLearner, cases: Sequence[Case], seeds: int, steps: int, seed: int
) -> Metrics:
    """Train ``seeds`` listeners per case in one batch and score them against π*."""
    probs = np.repeat(np.stack([c.probs for c in cases]), seeds, axis=0)
    expected = np.repeat(np.stack([c.expected for c in cases]), seeds, axis=0)
    policy = np.repeat(np.stack([c.policy for c in cases]), seeds, axis=0)
    log = train_batch(learner, probs, probs.shape[0], steps, np.random.default_rng(seed))
    users = np.arange(probs.shape[0])
    s, a = log.states.astype(np.int64), log.actions.astype(np.int64)
    best_a = policy[users, s]  # (steps, U)
    regret = np.cumsum(expected[users, s, best_a] - expected[users, s, a], axis=0)
    greedy = np.argmax(log.state.q, axis=2)
    neg20 = (log.rewards[:20] < 0).mean(axis=0).reshape(len(cases), seeds).mean(axis=1)
    final = regret[-1].reshape(len(cases), seeds).mean(axis=1)
    return Metrics(
        regret={t: float(regret[t - 1].mean()) for t in REGRET_AT if t <= steps},
        neg_share={t: float((log.rewards[:t] < 0).mean()) for t in NEG_AT if t <= steps},
        best_share_last=float((a[-LAST:] == best_a[-LAST:]).mean()),
        greedy_optimal=float((greedy == policy).all(axis=1).mean()),
        per_case={
            c.name: (float(f), float(n)) for c, f, n in zip(cases, final, neg20, strict=True)
        },
    )


def format_table(title: str, results: dict[str, Metrics]) -> str:
    head = (
        ["learner"]
        + [f"regret@{t}" for t in REGRET_AT]
        + [f"-5 share@{t}" for t in NEG_AT]
        + [f"best share last {LAST}", "greedy optimal"]
    )
    rows = []
    for name, m in results.items():
        rows.append(
            [name]
            + [f"{m.regret[t]:.0f}" if t in m.regret else "-" for t in REGRET_AT]
            + [f"{m.neg_share[t]:.3f}" if t in m.neg_share else "-" for t in NEG_AT]
            + [f"{m.best_share_last:.3f}", f"{m.greedy_optimal:.3f}"]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    out = [title, line.format(*head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def format_per_case(cases: Sequence[Case], results: dict[str, Metrics]) -> str:
    """Per profile: final regret and -5 share@20, next to a random and an oracle policy."""
    out = []
    for c in cases:
        p5 = c.probs[..., 0]
        parts = [
            f"{name} {m.per_case[c.name][0]:.0f} / {m.per_case[c.name][1]:.3f}"
            for name, m in results.items()
        ]
        oracle = p5[np.arange(len(c.policy)), c.policy].mean()
        out.append(
            f"  {c.name:<16} "
            + "   ".join(parts)
            + f"   (P(-5): random {p5.mean():.3f}, π* {oracle:.3f})"
        )
    return "\n".join(out)


def check_targets(baseline: Metrics, mine: Metrics, steps: int) -> list[tuple[str, bool]]:
    """Issue 6's targets for the default learner, on the generated profiles."""
    horizon = max(t for t in REGRET_AT if t <= steps)
    r_b, r_m = baseline.regret[horizon], mine.regret[horizon]
    n_b, n_m = baseline.neg_share[20], mine.neg_share[20]
    return [
        (f"regret@{horizon} {r_m:.0f} ≤ 1/5 of seed's {r_b:.0f} (≤ {r_b / 5:.0f})", r_m <= r_b / 5),
        (f"-5 share@20 {n_m:.3f} ≤ 0.6 × seed's {n_b:.3f} (≤ {0.6 * n_b:.3f})", n_m <= 0.6 * n_b),
        (f"best share last {LAST} {mine.best_share_last:.3f} ≥ 0.9", mine.best_share_last >= 0.9),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=200, help="listeners per profile")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--profiles", type=int, default=6, help="random profiles to generate")
    p.add_argument("--profile-seed", type=int, default=2026)
    p.add_argument("--min-gap", type=float, default=DEFAULT_MIN_GAP)
    p.add_argument("--seed", type=int, default=1, help="seed of the training runs")
    p.add_argument("--learners", default=",".join(dict.fromkeys(["seed", DEFAULT_LEARNER])))
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.learners.split(",") if n.strip()]
    unknown = [n for n in names if n not in LEARNERS]
    if unknown:
        sys.stderr.write(f"unknown learner(s) {unknown}; known: {sorted(LEARNERS)}\n")
        return 2
    started = time.perf_counter()
    builtin = [make_case(resolve_user(name)) for name in BUILTIN_PROFILES]
    users = random_profiles(args.profile_seed, args.profiles, min_gap=args.min_gap)
    generated = [make_case(u) for u in users]
    print(f"{args.seeds} seeds × {args.steps} steps per profile; {REGRET_DEFINITION}")
    print(f"generated profiles (seed {args.profile_seed}, min Q* gap {args.min_gap} reward units):")
    for u, c in zip(users, generated, strict=True):
        pol = ",".join(DEFAULT_GENRES[i] for i in c.policy)
        gap = policy_gap(u, DEFAULT_GENRES)
        print(f"  {u.name:<12} gap {gap:.2f}  π* per state [{pol}]  after={dict(u.after)}")
    sets = {f"built-in profiles ({len(builtin)})": builtin}
    sets[f"generated profiles ({len(generated)})"] = generated
    results = {title: {} for title in sets}
    for name in names:
        learner = make_learner(name)
        for title, cases in sets.items():
            results[title][name] = run_cases(learner, cases, args.seeds, args.steps, args.seed)
    for (title, table), cases in zip(results.items(), sets.values(), strict=True):
        print()
        print(format_table(title, table))
        print("per profile: regret@end / -5 share@20")
        print(format_per_case(cases, table))
    gen = results[f"generated profiles ({len(generated)})"]
    if "seed" in gen and DEFAULT_LEARNER in gen and DEFAULT_LEARNER != "seed":
        print(f"\ntargets for the default learner '{DEFAULT_LEARNER}' on the generated profiles:")
        for text, ok in check_targets(gen["seed"], gen[DEFAULT_LEARNER], args.steps):
            print(f"  [{'met' if ok else 'MISSED'}] {text}")
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
