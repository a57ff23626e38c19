"""Offline subcommands: ``simulate`` (one training run, the deck's experiment) and
``compare`` (simulated users side by side over many seeds, with honest statistics).

Bad arguments end as one line on stderr with exit code 2: argparse's own errors via
the project parser, everything else (a bad α, an unknown user, an unreadable profile)
as :class:`bot.errors.InvalidRequest`, which ``bot.cli.main.main`` prints as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import sys
import textwrap
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bot.engine import evaluation
from bot.engine.change_metrics import (
    RECOVER_HITS,
    RECOVER_WINDOW,
    change_summary,
    score_steps,
    tail_summary,
)
from bot.engine.evaluation import best_actions
from bot.engine.learners import (
    DEFAULT_LEARNER,
    LEARNERS,
    BatchLearner,
    LearnerClass,
    SeedParams,
    learner_class,
)
from bot.engine.listeners import BUILTIN_PROFILES, SimulatedUser, best_mean_reward
from bot.engine.qlearning import DEFAULT_GENRES, greedy_policy, validate_genres
from bot.errors import InvalidRequest
from bot.profile_files import resolve_profile
from bot.render.text import format_policy, format_q_table

MAX_EPISODES = 10_000_000
"""A single chain's logs take ~32 bytes per step; beyond this a typo eats the RAM."""
MAX_USER_STEPS = 50_000_000
"""``compare`` keeps (episodes × seeds) logs per user; ~6 bytes each."""
COMPARE_LEARNERS = tuple(dict.fromkeys(("seed", DEFAULT_LEARNER)))
"""What ``compare`` compares without ``--learner``: the deck's algorithm and the default."""
LAST = 100
FIRST = 20
REGRET_DEFINITION = (
    evaluation.REGRET_DEFINITION + "; for the seed's profiles π* is one genre for every state"
)


# ----------------------------------------------------------------------------- parsing


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2^63), got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


PARAM_FLAGS = {
    "alpha": ("--alpha", "learning rate α in (0, 1]"),
    "gamma": ("--gamma", "discount γ in [0, 1)"),
    "epsilon": ("--epsilon", "initial ε in [0, 1]"),
    "epsilon_decay": ("--epsilon-decay", "ε factor per step, (0, 1]"),
    "epsilon_min": ("--epsilon-min", "ε floor in [0, 1]"),
}
"""Learner settings by parameter field. Each learner takes those its parameter class has."""


def _users_of(field: str) -> str:
    names = [n for n, cls in LEARNERS.items() if field in _fields(cls)]
    return ", ".join(sorted(names))


def _fields(cls: LearnerClass) -> set[str]:
    return {f.name for f in dataclasses.fields(cls.params_type)}


def _add_params(p: argparse.ArgumentParser) -> None:
    for field, (flag, text) in PARAM_FLAGS.items():
        default = getattr(SeedParams(), field)
        p.add_argument(
            flag,
            type=_float,
            default=None,
            dest=field,
            help=f"{text} (default {default:g}; used by: {_users_of(field)})",
        )
    p.add_argument(
        "--genres",
        default=",".join(DEFAULT_GENRES),
        help="comma-separated genres (default: %(default)s)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate`` and ``compare`` to the ``python -m bot`` parser."""
    learners = ", ".join(sorted(LEARNERS))
    sim = subparsers.add_parser(
        "simulate",
        help="train against a simulated listener and show the learned table",
        description=(
            "Train one learner against a simulated listener in one unbroken chain (the "
            "seed's experiment) and print the mean reward, the policy and the Q-table."
        ),
    )
    sim.add_argument(
        "--user",
        default="generic",
        help=f"generic, a built-in ({', '.join(BUILTIN_PROFILES)}) or a .toml/.json profile",
    )
    sim.add_argument("--episodes", type=_int_at_least(1), default=1000, help="steps to train")
    sim.add_argument("--seed", type=_seed, default=None, help="random seed (default: fresh)")
    sim.add_argument(
        "--learner", default=DEFAULT_LEARNER, help=f"one of: {learners} (default %(default)s)"
    )
    _add_params(sim)
    sim.add_argument(
        "--plot", metavar="FILE.png", help="write the deck's 2×2 figure (default: no figure)"
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object instead")
    sim.set_defaults(func=cmd_simulate)

    cmp_ = subparsers.add_parser(
        "compare",
        help="compare simulated listeners (and learners) over many seeds",
        description=(
            "Train every (user, learner) pair over K independent seeds at once and report "
            "means ± standard errors. " + REGRET_DEFINITION + "."
        ),
    )
    cmp_.add_argument(
        "--user",
        action="append",
        metavar="PROFILE_OR_FILE",
        help="a built-in, generic, or a profile file; repeat it (default: every built-in)",
    )
    cmp_.add_argument(
        "--episodes",
        type=_int_at_least(1),
        default=None,
        help="steps per run (default 1000; with --population, reactions per listener, 50)",
    )
    cmp_.add_argument(
        "--seeds",
        type=_int_at_least(1),
        default=None,
        help="runs per user (default 100; with --population, servers, 20)",
    )
    cmp_.add_argument("--seed", type=_seed, default=0, help="base random seed (default 0)")
    cmp_.add_argument(
        "--learner",
        action="append",
        help=f"one of: {learners}; repeat it to compare learners "
        f"(default: {' and '.join(COMPARE_LEARNERS)})",
    )
    _add_params(cmp_)
    cmp_.add_argument(
        "--population",
        metavar="FILE",
        help="simulate servers of listeners drawn from this .toml/.json population "
        "(default: none, compare --user profiles)",
    )
    cmp_.add_argument(
        "--listeners",
        type=_int_at_least(1),
        default=None,
        help="with --population: listeners who join each server, one after another (default 50)",
    )
    cmp_.add_argument(
        "--community",
        choices=("on", "off"),
        default=None,
        help="with --population: newcomers start from the server's taste (default on)",
    )
    cmp_.add_argument("--json", action="store_true", help="print one JSON object instead")
    cmp_.set_defaults(func=cmd_compare)


@dataclass(frozen=True)
class Setup:
    """Validated inputs shared by both subcommands: the learner settings given as flags."""

    genres: tuple[str, ...]
    given: dict[str, float]


def _setup(args: argparse.Namespace) -> Setup:
    """Turn every genre error into a one-line InvalidRequest naming the value."""
    try:
        genres = validate_genres(g for g in args.genres.split(",") if g.strip())
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    given = {f: getattr(args, f) for f in PARAM_FLAGS if getattr(args, f) is not None}
    return Setup(genres, given)


def _learners(names: Sequence[str], setup: Setup) -> list[BatchLearner]:
    """Each learner with the given flags its parameter class has.

    A flag that none of the chosen learners uses is an error, not a silent no-op.
    """
    try:
        classes = [learner_class(name) for name in names]
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    used = set().union(*(_fields(cls) for cls in classes))
    for field in setup.given.keys() - used:
        chosen = ", ".join(dict.fromkeys(cls.name for cls in classes))
        raise InvalidRequest(
            f"{PARAM_FLAGS[field][0]} is a setting of {_users_of(field)}, not of {chosen}"
        )
    out = []
    for cls in classes:
        values = {f: v for f, v in setup.given.items() if f in _fields(cls)}
        try:
            out.append(cls(cls.params_type(**values)))
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
    return out


def _user(spec: str, genres: Sequence[str]) -> SimulatedUser:
    try:
        return resolve_profile(spec, genres)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


# ---------------------------------------------------------------------------- simulate


class ProgressBar:
    """A one-line bar on a terminal stream for long runs; silent elsewhere (pipes, files,
    CI logs) and for short runs, where it would only flash."""

    min_total = 2000

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.enabled = total >= self.min_total and _is_tty(stream)
        self.shown = -1

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        pct = int(100 * done / self.total)
        if pct == self.shown:
            return
        self.shown = pct
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\rtraining [{bar}] {pct:3d}% {done:,}/{self.total:,}")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _check_plot_path(path: str | None) -> Path | None:
    """Fail before training, not after, when the figure cannot be written."""
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InvalidRequest(f"--plot must name a .png file, got {path!r}")
    if not p.parent.is_dir():
        raise InvalidRequest(f"--plot: directory {str(p.parent)!r} does not exist")
    return p


SYMBOLS = {
    "alpha": "α",
    "gamma": "γ",
    "epsilon": "ε₀",
    "epsilon_decay": "decay",
    "epsilon_min": "ε_min",
}


def learner_settings(learner: BatchLearner) -> dict[str, float]:
    """The settings of this learner a user can set (flags, environment): the fields of its
    own parameter class among :data:`PARAM_FLAGS` (dyna: γ only; its priors are fixed)."""
    return {k: float(v) for k, v in learner.params.as_dict().items() if k in PARAM_FLAGS}


def simulate_result(
    log: Any, user: SimulatedUser, learner: BatchLearner, seed: int
) -> dict[str, Any]:
    """The JSON-ready record of one run (the ``simulate --json`` keys)."""
    genres = list(log.genres)
    policy = {genres[s]: genres[a] for s, a in enumerate(greedy_policy(log.state.q))}

    def counts(actions: np.ndarray) -> dict[str, int]:
        c = np.bincount(actions, minlength=len(genres))
        return {g: int(c[i]) for i, g in enumerate(genres)}

    explored = getattr(log, "explored", None)
    return {
        "genres": genres,
        "q_table": [[float(x) for x in row] for row in log.state.q],
        "policy": policy,
        "mean_reward": log.mean_reward,
        "mean_reward_last_100": log.mean_reward_last_100,
        "epsilon_final": float(log.state.epsilon),
        "explored_share": None if explored is None else float(np.mean(explored)),
        "episodes": int(log.rewards.size),
        "seed": seed,
        "learner": learner.name,
        "user": user.describe(),
        "params": learner_settings(learner),
        "action_counts": counts(log.actions),
        "action_counts_last_100": counts(log.actions[-LAST:]),
    }


def _settings_line(result: dict[str, Any]) -> str:
    """The learner's own settings, and how it explored: ε for seed, a share for dyna."""
    shown = " ".join(f"{SYMBOLS.get(k, k)}={v:g}" for k, v in result["params"].items())
    if "epsilon_decay" in result["params"]:
        return f"settings: {shown} → final ε {result['epsilon_final']:.3f}"
    share = result.get("explored_share")
    if share is None:
        return f"settings: {shown}"
    return f"settings: {shown} · {share:.1%} of picks were not the greedy genre"


def _reward_line(result: dict[str, Any]) -> str:
    steps = result["episodes"]
    if steps <= LAST:  # "the last 100 steps" of a 10-step run would be the whole run
        return f"mean reward: {result['mean_reward']:.3f} over all {steps:,} steps"
    return (
        f"mean reward: {result['mean_reward']:.3f} overall, "
        f"{result['mean_reward_last_100']:.3f} over the last {LAST} steps"
    )


def _simulate_text(result: dict[str, Any], plot: Path | None) -> str:
    lines = [
        f"simulate · user {result['user']['name']} · learner {result['learner']} · "
        f"{result['episodes']:,} steps · seed {result['seed']}",
        _settings_line(result),
        _reward_line(result),
        f"policy (current → best suggestion): {format_policy(result['policy'])}",
        "Q-table (rows: current genre, columns: suggestion, * = best):",
        format_q_table(result["genres"], np.array(result["q_table"]), result["policy"]),
    ]
    if plot is not None:
        lines.append(f"figure written to {plot}")
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    from bot.engine.training import run_chain

    setup = _setup(args)
    user = _user(args.user, setup.genres)
    (learner,) = _learners([args.learner], setup)
    plot = _check_plot_path(args.plot)
    if args.episodes > MAX_EPISODES:
        raise InvalidRequest(f"--episodes must be at most {MAX_EPISODES:,}, got {args.episodes:,}")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    bar = ProgressBar(args.episodes, sys.stderr)
    log = run_chain(
        learner, user, args.episodes, np.random.default_rng(seed), setup.genres, progress=bar
    )
    result = simulate_result(log, user, learner, seed)
    if plot is not None:
        title = f"{user.name} · {learner.name} learner · seed {seed}"
        _write_plot(plot, log, title, user, learner)
    if args.json:
        print(json.dumps(result))
    else:
        print(_simulate_text(result, plot))
    return 0


def _write_plot(
    path: Path, log: Any, title: str, user: SimulatedUser, learner: BatchLearner
) -> None:
    from bot.render.charts import training_figure_png

    best = best_line(user, log.genres, int(log.rewards.size))
    png = training_figure_png(log, title=title, best=best, epsilon=has_epsilon(learner))
    try:
        path.write_bytes(png)
    except OSError as exc:
        raise InvalidRequest(f"cannot write {str(path)!r}: {exc.strerror}") from None


def best_line(user: SimulatedUser, genres: Sequence[str], steps: int) -> float | np.ndarray | None:
    """The best achievable mean reward: one number, or per step for a listener whose taste
    changes (each phase has its own). None when the listener also moves on their own
    (``switch``): then no policy alone decides the long-run mean."""
    if user.switch:
        return None
    if not user.is_phased:
        return best_mean_reward(user.expected_rewards(genres))
    out = np.empty(steps)
    for seg in user.segments(steps):
        out[seg.start : seg.stop] = best_mean_reward(seg.taste.expected_rewards(genres))
    return out


def has_epsilon(learner: BatchLearner) -> bool:
    """Whether the learner explores by an ε schedule (seed) rather than by sampling (dyna)."""
    return learner.name == "seed"


# ----------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Metrics:
    """Per-seed values of compare's four metrics, each an array over seeds."""

    mean_reward_last_100: np.ndarray
    best_share_last_100: np.ndarray
    regret: np.ndarray
    neg_rate_first_20: np.ndarray


def run_metrics(
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    expected: np.ndarray,
    gamma: float,
) -> Metrics:
    """The compare metrics from (steps, seeds) logs and a stationary user's E[r | s, a]
    (the definitions are :mod:`bot.engine.evaluation`'s)."""
    lost = evaluation.lost_reward(states, actions, expected, gamma)
    optimal = evaluation.optimal_picks(states, actions, expected, gamma)
    return _metrics(lost, optimal, rewards)


def _metrics(lost: np.ndarray, optimal: np.ndarray, rewards: np.ndarray) -> Metrics:
    return Metrics(
        mean_reward_last_100=rewards[-LAST:].astype(np.float64).mean(axis=0),
        best_share_last_100=optimal[-LAST:].mean(axis=0),
        regret=lost.sum(axis=0),
        neg_rate_first_20=evaluation.skip_rate(rewards, FIRST),
    )


def _rng_for(seed: int, user: str, learner: str) -> np.random.Generator:
    """A Generator per (user, learner): adding a user to the list leaves the others' runs."""
    return np.random.default_rng([seed, zlib.crc32(f"{user}\0{learner}".encode())])


def compare_one(
    user: SimulatedUser,
    learner: BatchLearner,
    genres: Sequence[str],
    episodes: int,
    seeds: int,
    seed: int,
) -> dict[str, Any]:
    """Train ``seeds`` independent chains at once and summarise them (means and SEs)."""
    from bot.engine.batch_training import Stretch, train_stretches

    stretches = [
        Stretch(seg.stop - seg.start, seg.taste.reward_probs(genres), seg.taste.home_probs(genres))
        for seg in user.segments(episodes)
    ]
    rng = _rng_for(seed, user.name, learner.name)
    log = train_stretches(learner, stretches, seeds, rng, switch=user.switch)
    scores = score_steps(log.states, log.actions, user, genres, learner.params.gamma)
    m = _metrics(scores.lost, scores.optimal, log.rewards)
    out: dict[str, Any] = {"user": user.name, "learner": learner.name}
    se: dict[str, float] = {}
    for key, values in vars(m).items():
        out[key] = float(values.mean())
        se[key] = _se(values)
    out.update(tail_summary(m.regret, m.best_share_last_100))
    if scores.changes:
        out.update(change_summary(scores))
        se["regret_after_change"] = _se(scores.lost[scores.changes[0] :].sum(axis=0))
    out["se"] = se
    out["best"] = _best_names(user, genres, learner.params.gamma)
    return out


def _se(values: np.ndarray) -> float:
    """Standard error of the mean over runs (0 for a single run)."""
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def _best_names(user: SimulatedUser, genres: Sequence[str], gamma: float) -> str:
    """The optimal suggestion(s) in words: one genre, 'any' or per-state; for a phased
    listener, each phase's joined by →."""
    if user.is_phased:
        return "→".join(_best_names(p.taste, genres, gamma) for p in user.phases)
    best = best_actions(user.expected_rewards(genres), gamma)
    if best.all():
        return "any"
    columns = [tuple(np.flatnonzero(row)) for row in best]
    if all(c == columns[0] for c in columns):
        return "/".join(genres[int(j)] for j in columns[0])
    return "depends on state"


COLUMNS = (
    ("reward last 100", "mean_reward_last_100", "{:.2f}", 1.0),
    ("best share", "best_share_last_100", "{:.1f}%", 100.0),
    ("regret", "regret", "{:,.0f}", 1.0),
    ("−5 in first 20", "neg_rate_first_20", "{:.1f}%", 100.0),
)


def _compare_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """Header plus one row of 'mean ± SE' cells per (user, learner); with a phased
    listener among them, the regret after the change and the steps to recover too."""
    phased = any("regret_after_change" in r for r in results)
    head = ["user", "learner", "best", *(c[0] for c in COLUMNS)]
    rows = [[*head, "after change", "recover (never)"] if phased else head]
    for r in results:
        cells = [r["user"], r["learner"], r["best"]]
        for _, key, fmt, scale in COLUMNS:
            cells.append(f"{fmt.format(scale * r[key])} ± {fmt.format(scale * r['se'][key])}")
        if phased:
            cells += _change_cells(r)
        rows.append(cells)
    return rows


def _change_cells(r: dict[str, Any]) -> list[str]:
    if "regret_after_change" not in r:
        return ["-", "-"]
    after = f"{r['regret_after_change']:,.0f} ± {r['se']['regret_after_change']:,.0f}"
    steps = r["steps_to_recover"]
    median = "never" if steps is None else f"{steps:,.0f}"
    return [after, f"{median} ({100 * r['never_recovered']:.0f}%)"]


def _compare_text(results: list[dict[str, Any]], episodes: int, seeds: int) -> str:
    rows = _compare_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"compare · {episodes:,} steps · {seeds} seeds each · mean ± standard error"]
    for row in rows:
        left = [c.ljust(w) for c, w in zip(row[:3], widths[:3], strict=True)]
        right = [c.rjust(w) for c, w in zip(row[3:], widths[3:], strict=True)]
        lines.append("  ".join(left + right).rstrip())
    notes = (
        "best share = share of the last 100 suggestions that were an optimal genre; "
        "−5 in first 20 = share of skips among the first 20 rewards; " + REGRET_DEFINITION + "."
    )
    if any("regret_after_change" in r for r in results):
        notes += (
            " For a listener whose taste changes, π* is the optimal policy of the phase in "
            "force; after change = regret from the first change to the end; recover = median "
            f"steps after the last change until {RECOVER_HITS} of the last {RECOVER_WINDOW} "
            "picks were optimal (never = share of runs that never got there)."
        )
    lines += textwrap.wrap(notes, width=100)
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    setup = _setup(args)
    if args.population is not None:
        from bot.cli.population import cmd_population

        name = (args.learner or [DEFAULT_LEARNER])[0]
        return cmd_population(args, setup.genres, _learners([name], setup)[0].params)
    for flag in ("listeners", "community"):
        if getattr(args, flag) is not None:
            raise InvalidRequest(f"--{flag} needs --population")
    args.episodes = 1000 if args.episodes is None else args.episodes
    args.seeds = 100 if args.seeds is None else args.seeds
    specs = args.user or list(BUILTIN_PROFILES)
    users = [_user(spec, setup.genres) for spec in specs]
    learners = _learners(args.learner or COMPARE_LEARNERS, setup)
    if args.episodes * args.seeds > MAX_USER_STEPS:
        raise InvalidRequest(
            f"--episodes × --seeds must be at most {MAX_USER_STEPS:,}, "
            f"got {args.episodes * args.seeds:,}"
        )
    results = [
        compare_one(u, lrn, setup.genres, args.episodes, args.seeds, args.seed)
        for u in users
        for lrn in learners
    ]
    if args.json:
        payload = {
            "episodes": args.episodes,
            "seeds": args.seeds,
            "seed": args.seed,
            "regret_definition": REGRET_DEFINITION,
            "results": results,
        }
        print(json.dumps(payload))
    else:
        print(_compare_text(results, args.episodes, args.seeds))
    return 0
