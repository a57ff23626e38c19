"""``compare --population``: servers of simulated listeners, community prior on or off.

Each seed is one server: ``--listeners`` listeners drawn from the population join one
after another, each reacts ``--episodes`` times, and with ``--community on`` each starts
from what the members before them taught, through the engine code the bot uses
(:mod:`bot.engine.community`, :mod:`bot.engine.server_sim`).
"""

from __future__ import annotations

import argparse
import json
import zlib
from typing import Any

import numpy as np

from bot.cli.documents import read_document
from bot.engine.learners import (
    DEFAULT_LEARNER,
    LearnerParams,
    make_learner,
    takes_community_prior,
)
from bot.engine.listeners import ProfileError
from bot.engine.population import Population, population_from_mapping
from bot.engine.server_sim import simulate_servers, summarise
from bot.errors import InvalidRequest

MAX_REACTIONS = 20_000_000
"""seeds × listeners × episodes beyond this is a typo, not an experiment."""


def load_population(path: str, genres: tuple[str, ...]) -> Population:
    data = read_document(path, "population")
    try:
        return population_from_mapping(data, genres, source=path.rsplit("/", 1)[-1])
    except ProfileError as exc:
        raise InvalidRequest(str(exc)) from None


def population_result(
    population: Population,
    learner_name: str,
    params: LearnerParams | None,
    genres: tuple[str, ...],
    *,
    listeners: int,
    episodes: int,
    seeds: int,
    seed: int,
    community: bool,
) -> dict[str, Any]:
    """The JSON-ready figures of one population run (the ``--json`` keys)."""
    try:
        learner = make_learner(learner_name, params)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(str(exc)) from None
    rng = np.random.default_rng([seed, zlib.crc32(population.name.encode())])
    run = simulate_servers(
        population, learner, genres, listeners, episodes, seeds, rng,
        community=community, gamma=learner.params.gamma,
    )  # fmt: skip
    return {
        "population": population.name,
        "learner": learner.name,
        "community": "on" if community else "off",
        "community_supported": takes_community_prior(learner),
        "listeners": listeners,
        "episodes": episodes,
        "seeds": seeds,
        "seed": seed,
        **summarise(run, population),
    }


def cmd_population(
    args: argparse.Namespace, genres: tuple[str, ...], params: LearnerParams | None
) -> int:
    if args.user:
        raise InvalidRequest("--population and --user cannot be combined")
    if args.learner and len(args.learner) > 1:
        raise InvalidRequest("--population takes one --learner")
    population = load_population(args.population, genres)
    listeners = 50 if args.listeners is None else args.listeners
    episodes = 50 if args.episodes is None else args.episodes
    seeds = 20 if args.seeds is None else args.seeds
    if listeners * episodes * seeds > MAX_REACTIONS:
        raise InvalidRequest(
            f"--seeds × --listeners × --episodes must be at most {MAX_REACTIONS:,}, "
            f"got {listeners * episodes * seeds:,}"
        )
    result = population_result(
        population,
        (args.learner or [DEFAULT_LEARNER])[0],
        params,
        genres,
        listeners=listeners,
        episodes=episodes,
        seeds=seeds,
        seed=args.seed,
        community=(args.community or "on") == "on",
    )
    print(json.dumps(result) if args.json else population_text(result))
    return 0


def population_text(r: dict[str, Any]) -> str:
    lines = [
        f"compare · population {r['population']} · learner {r['learner']} · community "
        f"{r['community']} · {r['seeds']} servers × {r['listeners']} listeners × "
        f"{r['episodes']} reactions",
        f"{'group':<16} {'listeners':>9} {'regret':>8} {'regret@20':>10} {'−5 in first 20':>15}",
    ]
    rows = [{**r, "group": "everyone", "listeners": r["seeds"] * r["listeners"]}, *r["by_group"]]
    for g in rows:
        if g["regret"] is None:
            lines.append(f"{g['group']:<16} {g['listeners']:>9} {'-':>8} {'-':>10} {'-':>15}")
            continue
        lines.append(
            f"{g['group']:<16} {g['listeners']:>9} {g['regret']:>8.1f} {g['regret_20']:>10.1f} "
            f"{100 * g['neg_rate_first_20']:>14.1f}%"
        )
    if not r["community_supported"] and r["community"] == "on":
        lines.append(f"(learner {r['learner']} takes no community prior: every newcomer is fresh)")
    return "\n".join(lines)
