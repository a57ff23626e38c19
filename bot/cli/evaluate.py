"""``python -m bot evaluate``: what a fixed policy would have earned per suggestion,
estimated offline from the logged recommendations, their propensities and rewards.

Policies: ``greedy`` (each member's best genre from today's stored table), ``uniform``
(any genre alike), ``popular`` (the genre with the best mean reward in the log, for
everyone), or a learner's name (its own selection probabilities on today's tables).
The estimator is :func:`bot.engine.offpolicy.snips`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bot.cli.ops import _database
from bot.config import ConfigError, Settings
from bot.engine.learners import LEARNERS, make_learner
from bot.engine.offpolicy import snips
from bot.errors import InvalidRequest
from storage.base import Recommendation, Storage
from storage.factory import is_postgres_url, open_storage

POLICIES = ("greedy", "uniform", "popular")


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser(
        "evaluate",
        help="estimate offline what a fixed policy would have earned per suggestion",
        description=(
            "Self-normalised importance sampling over the logged recommendations that carry "
            "a propensity: the estimated reward per suggestion of a policy, a bootstrap 95 %% "
            "interval and the effective sample size."
        ),
    )
    ev.add_argument("--db", help="database file or postgresql:// URL (default: QTUNE_DB)")
    ev.add_argument(
        "--policy",
        default="greedy",
        help=f"{', '.join(POLICIES)} or a learner ({', '.join(sorted(LEARNERS))}); default greedy",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead")
    ev.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    policy = args.policy.strip().lower()
    if policy not in POLICIES and policy not in LEARNERS:
        known = ", ".join([*POLICIES, *sorted(LEARNERS)])
        raise InvalidRequest(f"unknown policy {args.policy!r}; choose one of {known}")
    settings = Settings.from_env()
    db = _database(args.db, settings)
    if not is_postgres_url(db) and not Path(db).exists():
        raise ConfigError(f"no database at {db} (QTUNE_DB); the bot has not stored anything yet")
    result = asyncio.run(_evaluate(settings, db, policy, np.random.default_rng(args.seed)))
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(_text(result) + "\n")
    return 0


async def _evaluate(
    settings: Settings, db: str, policy: str, rng: np.random.Generator
) -> dict[str, Any]:
    storage = await open_storage(db, genres=settings.genres)
    try:
        logged = [
            r
            for r in await storage.logged_rewards()
            if r.state in settings.genres and r.action in settings.genres
        ]
        target = await _target_probabilities(storage, settings, policy, logged, rng)
    finally:
        await storage.close()
    kept = [(r, p) for r, p in zip(logged, target, strict=True) if p is not None]
    rewards = np.array([r.reward for r, _ in kept], dtype=float)
    est = snips(
        rewards,
        np.array([r.propensity for r, _ in kept], dtype=float),
        np.array([p for _, p in kept], dtype=float),
        rng,
    )
    return {
        "policy": policy,
        "value": None if np.isnan(est.value) else est.value,
        "ci95": None if np.isnan(est.value) else [est.low, est.high],
        "effective_sample_size": est.effective_sample_size,
        "logged": est.n,
        "logged_mean_reward": float(rewards.mean()) if rewards.size else None,
        "estimator": "self-normalised importance sampling, bootstrap percentile interval",
    }


async def _target_probabilities(
    storage: Storage,
    settings: Settings,
    policy: str,
    logged: list[Recommendation],
    rng: np.random.Generator,
) -> list[float | None]:
    """π(a_i | s_i) of the policy for each logged suggestion (None: cannot say, e.g. the
    member's table is gone)."""
    genres = settings.genres
    n = len(genres)
    if policy == "uniform":
        return [1.0 / n for _ in logged]
    if policy == "popular":
        sums = np.zeros(n)
        counts = np.zeros(n)
        for r in logged:
            sums[genres.index(r.action)] += float(r.reward or 0.0)
            counts[genres.index(r.action)] += 1
        best = int(np.argmax(np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)))
        return [1.0 if genres.index(r.action) == best else 0.0 for r in logged]
    learner = None
    if policy != "greedy":
        # the configured learner's settings when it is the one asked for, else defaults
        params = settings.params if policy == settings.learner else None
        learner = make_learner(
            policy, params, rewards=(settings.dislike_reward, settings.like_reward)
        )
    tables: dict[int, Any] = {}
    out: list[float | None] = []
    for r in logged:
        if r.user_id not in tables:
            tables[r.user_id] = await storage.get_user(r.user_id)
        user = tables[r.user_id]
        if user is None:
            out.append(None)
            continue
        s, a = genres.index(r.state), genres.index(r.action)
        if learner is None:
            row = user.learner.q[s]
            best = row == row.max()
            out.append(float(best[a] / best.sum()))
        else:
            out.append(float(learner.selection_probabilities(user.learner, s, rng)[a]))
    return out


def _text(r: dict[str, Any]) -> str:
    if r["value"] is None:
        return (
            f"policy {r['policy']}: no estimate — {r['logged']:,} logged suggestions with a "
            "propensity, none the policy would have made"
        )
    low, high = r["ci95"]
    return (
        f"policy {r['policy']}: {r['value']:.2f} per suggestion (95 % interval {low:.2f} to "
        f"{high:.2f}; effective sample size {r['effective_sample_size']:.0f} of "
        f"{r['logged']:,} logged); the logged suggestions earned {r['logged_mean_reward']:.2f}"
    )
