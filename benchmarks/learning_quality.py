"""Learning quality of the learners, side by side (issues 6 and 12).

    uv run python benchmarks/learning_quality.py [--seeds 200] [--steps 1000]
        [--sections stationary,drift,population] [--peers] [--peer-seeds 50]

Every learner trains ``--seeds`` independent listeners on each profile (the 5
built-ins, plus ``--profiles`` random ones from ``--profile-seed``, every other one
with state-dependent taste), all at once through the batched trainer. The metrics
are means over profiles and seeds; the targets are checked on the generated set.

Three sections:

* **stationary**: regret@20/50/200/1000, −5 shares, best share, and the tail (share of
  stuck runs, whose last 100 picks were less than half optimal, and regret's 95th
  percentile);
* **drift**: pop_lover → jazz_enthusiast at step 500, and ``--profiles`` random listeners
  whose taste changes at step 500 (every other one state-dependent): regret after the
  change, median steps to recover (16 of the last 20 picks optimal), share never
  recovered;
* **population**: the servers of ``docs/populations/*.toml`` and ``--populations``
  generated ones (2–3 groups, from ``--population-seed``), 20 seeds × 50 listeners × 50
  reactions, community prior on against off in the same run, overall and per group.

``--peers`` adds the learners of ``benchmarks/peers.py`` that can run here (a
Beta-Thompson bandit always; Vowpal Wabbit when installed: ``uv sync --group peers``),
trained on ``--peer-seeds`` seeds because VW runs one Python call per listener and step.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from bot.engine import evaluation
from bot.engine.batch_training import BatchLog, train_batch
from bot.engine.change_metrics import tail_summary
from bot.engine.evaluation import REGRET_DEFINITION
from bot.engine.learners import DEFAULT_LEARNER, LEARNERS, BatchLearner, make_learner
from bot.engine.listeners import BUILTIN_PROFILES, SimulatedUser, resolve_user
from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.random_listeners import DEFAULT_MIN_GAP, policy_gap, random_profiles
from bot.profile_files import load_profile_file

GAMMA = 0.9
REGRET_AT = (20, 50, 200, 1000)
NEG_AT = (20, 50)
LAST = 100


@dataclass(frozen=True)
class Case:
    """One listener to learn: its reward tensor and what the optimum does."""

    name: str
    probs: np.ndarray  # P[s, a, k]
    expected: np.ndarray  # E[r | s, a]
    policy: np.ndarray  # π*(s)


def make_case(user: SimulatedUser, genres: Sequence[str] = DEFAULT_GENRES) -> Case:
    expected = user.expected_rewards(genres)
    policy = evaluation.optimal_policy(expected, GAMMA)
    return Case(user.name, user.reward_probs(genres), expected, policy)


@dataclass(frozen=True)
class Metrics:
    """Means over every run of a profile set (each profile weighs the same)."""

    regret: dict[int, float]
    neg_share: dict[int, float]
    best_share_last: float
    greedy_optimal: float
    per_case: dict[str, tuple[float, float]]  # name -> (final regret, -5 share@20)
    stuck_share: float = 0.0  # runs whose last 100 picks were less than half optimal
    regret_p95: float = 0.0  # 95th percentile of a run's final regret


T = TypeVar("T")


def in_child(fn: Callable[[], T]) -> T:
    """``fn()`` in a forked child process, its result sent back: what the child allocated
    (VW's workspaces) is returned to the system when it exits."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def run() -> None:
        try:
            queue.put((True, fn()))
        except BaseException as exc:  # reported in the parent
            queue.put((False, f"{type(exc).__name__}: {exc}"))

    child = ctx.Process(target=run)
    child.start()
    ok, value = queue.get()
    child.join()
    if not ok:
        raise RuntimeError(f"peer run failed in its child process: {value}")
    return value


def run_cases(
    learner: BatchLearner,
    cases: Sequence[Case],
    seeds: int,
    steps: int,
    seed: int,
    *,
    per_case: bool = False,
) -> Metrics:
    """Train ``seeds`` listeners per case in one batch and score them against π*.

    ``per_case`` trains one case's listeners at a time, each in a child process (the
    peers: a VW workspace holds about 8 MB, and some of it stays after ``finish()``, so
    12 cases × 200 seeds in one process ran out of memory at over 20 GB)."""
    probs = np.repeat(np.stack([c.probs for c in cases]), seeds, axis=0)
    expected = np.repeat(np.stack([c.expected for c in cases]), seeds, axis=0)
    policy = np.repeat(np.stack([c.policy for c in cases]), seeds, axis=0)
    if per_case:
        logs = [
            in_child(
                lambda i=i: train_batch(
                    learner, probs[i : i + seeds], seeds, steps, np.random.default_rng([seed, i])
                )
            )
            for i in range(0, probs.shape[0], seeds)
        ]
    else:
        logs = [train_batch(learner, probs, probs.shape[0], steps, np.random.default_rng(seed))]
    s = np.concatenate([lg.states for lg in logs], axis=1)
    a = np.concatenate([lg.actions for lg in logs], axis=1)
    rewards = np.concatenate([lg.rewards for lg in logs], axis=1)
    regret = np.cumsum(evaluation.lost_reward(s, a, expected, GAMMA), axis=0)
    greedy = np.concatenate([np.argmax(lg.state.q, axis=2) for lg in logs])
    neg20 = evaluation.skip_rate(rewards, 20).reshape(len(cases), seeds).mean(axis=1)
    final = regret[-1].reshape(len(cases), seeds).mean(axis=1)
    best_last = evaluation.best_share(s[-LAST:], a[-LAST:], expected, GAMMA)
    return Metrics(
        regret={t: float(regret[t - 1].mean()) for t in REGRET_AT if t <= steps},
        neg_share={t: float(evaluation.skip_rate(rewards, t).mean()) for t in NEG_AT if t <= steps},
        best_share_last=float(best_last.mean()),
        greedy_optimal=float((greedy == policy).all(axis=1).mean()),
        per_case={
            c.name: (float(f), float(n)) for c, f, n in zip(cases, final, neg20, strict=True)
        },
        **tail_summary(regret[-1], best_last),
    )


def format_table(title: str, results: dict[str, Metrics]) -> str:
    head = (
        ["learner"]
        + [f"regret@{t}" for t in REGRET_AT]
        + [f"-5 share@{t}" for t in NEG_AT]
        + [f"best share last {LAST}", "greedy optimal", "stuck share", "regret p95"]
    )
    rows = []
    for name, m in results.items():
        rows.append(
            [name]
            + [f"{m.regret[t]:.0f}" if t in m.regret else "-" for t in REGRET_AT]
            + [f"{m.neg_share[t]:.3f}" if t in m.neg_share else "-" for t in NEG_AT]
            + [f"{m.best_share_last:.3f}", f"{m.greedy_optimal:.3f}"]
            + [f"{m.stuck_share:.4f}", f"{m.regret_p95:.0f}"]
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
    p.add_argument("--sections", default="stationary,drift,population")
    p.add_argument("--peers", action="store_true", help="add the peers that are installed")
    p.add_argument("--peer-seeds", type=int, default=50, help="seeds for the peers")
    p.add_argument("--servers", type=int, default=20, help="population: servers (seeds)")
    p.add_argument("--populations", type=int, default=3, help="populations to generate")
    p.add_argument("--population-seed", type=int, default=2026)
    return p.parse_args(argv)


def learners_to_run(args: argparse.Namespace) -> dict[str, tuple[BatchLearner, int]]:
    """Name -> (learner, seeds): qtune's learners on ``--seeds``, peers on ``--peer-seeds``."""
    out: dict[str, tuple[BatchLearner, int]] = {}
    for name in [n.strip() for n in args.learners.split(",") if n.strip()]:
        out[name] = (make_learner(name), args.seeds)
    if args.peers:
        from peers import peer_learners

        for name, peer in peer_learners(DEFAULT_GENRES).items():
            out[name] = (peer, args.peer_seeds)  # type: ignore[assignment]
    return out


def stationary_section(args: argparse.Namespace, learners: dict) -> None:
    builtin = [make_case(resolve_user(name)) for name in BUILTIN_PROFILES]
    users = random_profiles(args.profile_seed, args.profiles, min_gap=args.min_gap)
    generated = [make_case(u) for u in users]
    print(f"generated profiles (seed {args.profile_seed}, min Q* gap {args.min_gap} reward units):")
    for u, c in zip(users, generated, strict=True):
        pol = ",".join(DEFAULT_GENRES[i] for i in c.policy)
        gap = policy_gap(u, DEFAULT_GENRES)
        print(f"  {u.name:<12} gap {gap:.2f}  π* per state [{pol}]  after={dict(u.after)}")
    owl = load_profile_file(Path(__file__).resolve().parents[1] / "docs/profiles/night_owl.toml")
    night_owl = make_case(SimulatedUser(owl.name, owl.preferences, owl.after))  # chain as seed's
    sets = {f"built-in profiles ({len(builtin)})": builtin}
    sets[f"generated profiles ({len(generated)})"] = generated
    everyone = [*builtin, night_owl, *generated]
    sets[f"{len(everyone)} listeners (built-ins, night_owl, generated)"] = everyone
    results: dict[str, dict[str, Metrics]] = {title: {} for title in sets}
    for name, (learner, seeds) in learners.items():
        peer = name not in LEARNERS
        for title, cases in sets.items():
            if peer and cases is not everyone:
                continue  # peers are slow: only on the whole set
            results[title][name] = run_cases(
                learner, cases, seeds, args.steps, args.seed, per_case=peer
            )
    for (title, table), cases in zip(results.items(), sets.values(), strict=True):
        print()
        print(format_table(title, table))
        if "listeners" not in title:
            print("per profile: regret@end / -5 share@20")
            print(format_per_case(cases, table))
    if "seed" in learners and DEFAULT_LEARNER in learners and DEFAULT_LEARNER != "seed":
        for title in list(sets)[:2]:
            print(f"\nstationary targets for '{DEFAULT_LEARNER}' on the {title}:")
            got = results[title]
            checks = check_targets(got["seed"], got[DEFAULT_LEARNER], args.steps)
            stuck = got[DEFAULT_LEARNER].stuck_share
            checks.append((f"stuck share {stuck:.4f} ≤ 0.003", stuck <= 0.003))
            for text, ok in checks:
                print(f"  [{'met' if ok else 'MISSED'}] {text}")


def drift_section(args: argparse.Namespace, learners: dict) -> None:
    from bot.engine.batch_training import Stretch, train_stretches
    from bot.engine.change_metrics import change_summary, score_steps
    from bot.engine.listeners import Phase
    from bot.engine.random_listeners import random_phased_profiles

    change = args.steps // 2
    pop, jazz = resolve_user("pop_lover"), resolve_user("jazz_enthusiast")
    swing = SimulatedUser("pop→jazz", pop.preferences, {}, (Phase(pop, change), Phase(jazz)))
    randoms = random_phased_profiles(args.profile_seed, args.profiles, change_at=change)
    print(f"\ndrift: taste changes at step {change} of {args.steps}")
    rows = []
    figures: dict[str, dict[str, dict]] = {}
    for name, (learner, seeds) in learners.items():
        for user in [swing, *randoms]:
            stretches = [
                Stretch(g.stop - g.start, g.taste.reward_probs(DEFAULT_GENRES))
                for g in user.segments(args.steps)
            ]

            def train(
                stretches: list = stretches, seeds: int = seeds, learner: object = learner
            ) -> BatchLog:
                rng = np.random.default_rng(args.seed)
                return train_stretches(learner, stretches, seeds, rng)  # type: ignore[arg-type]

            log = in_child(train) if name not in LEARNERS else train()
            scores = score_steps(log.states, log.actions, user, DEFAULT_GENRES, GAMMA)
            figures.setdefault(name, {})[user.name] = change_summary(scores)
    head = [
        "learner",
        "pop→jazz after",
        "recover",
        "never",
        "random (mean) after",
        "recover",
        "never",
    ]
    for name, per in figures.items():
        sw = per["pop→jazz"]
        rest = [per[u.name] for u in randoms]
        mean_after = float(np.mean([r["regret_after_change"] for r in rest]))
        rec = [r["steps_to_recover"] for r in rest]
        rec_txt = "/".join("∞" if x is None else f"{x:.0f}" for x in rec)
        never = float(np.mean([r["never_recovered"] for r in rest]))
        sw_rec = "never" if sw["steps_to_recover"] is None else f"{sw['steps_to_recover']:.0f}"
        after_txt = f"{sw['regret_after_change']:.0f}"
        never_txt = f"{sw['never_recovered']:.3f}"
        rows.append(
            [name, after_txt, sw_rec, never_txt, f"{mean_after:.0f}", rec_txt, f"{never:.3f}"]
        )
    _print_table(head, rows)
    print("random drift listeners (regret after the change per listener):")
    for name, per in figures.items():
        cells = "  ".join(f"{u.name} {per[u.name]['regret_after_change']:.0f}" for u in randoms)
        print(f"  {name:<14} {cells}")
    if "seed" in figures and DEFAULT_LEARNER in figures:
        mine, base = figures[DEFAULT_LEARNER], figures["seed"]
        m = float(np.mean([mine[u.name]["regret_after_change"] for u in randoms]))
        b = float(np.mean([base[u.name]["regret_after_change"] for u in randoms]))
        sw = mine["pop→jazz"]["regret_after_change"]
        print(f"\ndrift targets for '{DEFAULT_LEARNER}':")
        print(
            f"  [{'met' if m <= 0.2 * b else 'MISSED'}] random drift listeners: regret after "
            f"the change {m:.0f} ≤ 0.2 × seed's {b:.0f} (≤ {0.2 * b:.0f}); ratio {m / b:.3f}"
        )
        print(
            f"  [{'met' if sw <= 350 else 'MISSED'}] pop→jazz: regret after the change "
            f"{sw:.0f} ≤ 350"
        )


def population_section(args: argparse.Namespace, learners: dict) -> None:
    from bot.cli.population import load_population, population_result
    from bot.engine.population import random_populations

    folder = Path(__file__).resolve().parents[1] / "docs" / "populations"
    print(
        f"\npopulation: {args.servers} servers × 50 listeners × 50 reactions, "
        f"'{DEFAULT_LEARNER}' with the community prior on vs off (same listeners)"
    )
    head = [
        "population",
        "group",
        "regret off",
        "on",
        "ratio",
        "regret@20 off",
        "on",
        "ratio",
        "−5 first 20 off",
        "on",
        "ratio",
    ]
    rows, worst, r20, neg, arrivals = [], 0.0, [], [], []
    populations = [load_population(str(p), DEFAULT_GENRES) for p in sorted(folder.glob("*.toml"))]
    generated = random_populations(args.population_seed, args.populations)
    for population in generated:
        groups = ", ".join(
            f"{g.name} {g.share:.2f}" + ("" if g.random else f" ±{g.noise:.2f}")
            for g in population.groups
        )
        print(f"  generated {population.name}: {groups}")
    for population in [*populations, *generated]:
        run = {
            c: population_result(
                population,
                DEFAULT_LEARNER,
                None,
                DEFAULT_GENRES,
                listeners=50,
                episodes=50,
                seeds=args.servers,
                seed=args.seed,
                community=c == "on",
            )
            for c in ("off", "on")
        }
        groups = [("everyone", run["off"], run["on"])]
        pairs = zip(run["off"]["by_group"], run["on"]["by_group"], strict=True)
        groups += [(g["group"], g, h) for g, h in pairs]
        for label, off, on in groups:
            cells = [population.name if label == "everyone" else "", label]
            for key in ("regret", "regret_20", "neg_rate_first_20"):
                ratio = on[key] / off[key] if off[key] else float("nan")
                cells += [
                    f"{off[key]:.3f}" if key.startswith("neg") else f"{off[key]:.1f}",
                    f"{on[key]:.3f}" if key.startswith("neg") else f"{on[key]:.1f}",
                    f"{ratio:.2f}",
                ]
            rows.append(cells)
            if label != "everyone":
                worst = max(worst, on["regret"] / off["regret"])
        r20.append(run["on"]["regret_20"] / run["off"]["regret_20"])
        arrivals.append((population.name, run["off"]["by_arrival"], run["on"]["by_arrival"]))
        neg.append(run["on"]["neg_rate_first_20"] / run["off"]["neg_rate_first_20"])
    _print_table(head, rows)
    _print_arrivals(arrivals)
    print(f"population targets (every population, {len(r20)}):")
    print(
        f"  [{'met' if max(r20) <= 0.55 else 'MISSED'}] regret@20 on/off ≤ 0.55: "
        + ", ".join(f"{x:.2f}" for x in r20)
    )
    print(
        f"  [{'met' if max(neg) <= 0.75 else 'MISSED'}] −5 share in first 20 on/off ≤ 0.75: "
        + ", ".join(f"{x:.2f}" for x in neg)
    )
    print(
        f"  [{'met' if worst <= 1.15 else 'MISSED'}] no group's regret above 1.15× off: "
        f"worst {worst:.2f}"
    )


def _print_arrivals(arrivals: list[tuple[str, list, list]]) -> None:
    """regret@20 on/off by join order: a server's first joiners have no cluster of 3
    members to start from, so this shows how much of a miss is theirs."""
    print("regret@20 on/off by join order (share of the on-regret@20 in brackets):")
    for name, off, on in arrivals:
        total = sum(b["listeners"] * b["regret_20"] for b in on)
        cells = [
            f"{b['first']}–{b['last']} {b['regret_20'] / a['regret_20']:.2f} "
            f"({b['listeners'] * b['regret_20'] / total:.0%})"
            for a, b in zip(off, on, strict=True)
        ]
        print(f"  {name}: " + ", ".join(cells))


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(line.format(*head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line.format(*r))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.learners.split(",") if n.strip()]
    unknown = [n for n in names if n not in LEARNERS]
    if unknown:
        sys.stderr.write(f"unknown learner(s) {unknown}; known: {sorted(LEARNERS)}\n")
        return 2
    started = time.perf_counter()
    learners = learners_to_run(args)
    sections = {x.strip() for x in args.sections.split(",")}
    print(f"{args.seeds} seeds × {args.steps} steps per profile; {REGRET_DEFINITION}")
    peer_note = [n for n, (_, k) in learners.items() if k != args.seeds]
    if peer_note:
        print(f"peers {', '.join(peer_note)} on {args.peer_seeds} seeds")
    if "stationary" in sections:
        stationary_section(args, learners)
    if "drift" in sections:
        drift_section(args, learners)
    if "population" in sections:
        population_section(args, learners)
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
