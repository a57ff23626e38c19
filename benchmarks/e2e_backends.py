"""SQLite and PostgreSQL, 1 and N bot processes, side by side under the e2e load.

    uv run python benchmarks/e2e_load.py --db sqlite,pg --procs 1,2 [--repeat 3]

Used by ``benchmarks/e2e_load.py`` when ``--db`` or ``--procs`` is given. Each run gets a
fresh fake Discord, fresh bot process(es) (``python -m bot``, as an operator starts them)
and a fresh database, then the plain phase of ``e2e_load.py`` (``--users`` users, each a
``/nowplaying`` and a 👍/👎 per round, over channels and guilds, Discord's rate limits).
Databases (``--db``, a comma list):

- ``sqlite``: a new SQLite file per run in a temp folder; a folder path: the same, there;
- ``pg``: a throwaway *durable* PostgreSQL server (``tests/pg_server.py``, fsync on), a new
  database per run; a ``postgresql://…`` URL: a new database per run on that server (the
  role needs CREATEDB), dropped afterwards.

N > 1 processes run a sharded cluster: ``QTUNE_SHARD_COUNT=N``, one shard per process
(``QTUNE_SHARD_IDS=i``), guilds spread over the shards, so a user's reactions reach
several processes. SQLite refuses a second process at start (a cluster needs
PostgreSQL): that row is printed as refused, not run. Repeats alternate the order.

Figures per row (median over repeats): interactions answered per second, interaction →
callback p50/p99, interaction → 👍👎 p99, reaction → committed p99 (a read-only poller
on the database), and CPU per interaction: every bot process, plus the throwaway
server's processes (without the poller's). Then the check that nothing was lost or
doubled: after the bots stopped, each reaction given must be stored as exactly one
reward of the right value on its recommendation, and each user's reward count, visit
count and reward sum must equal the reactions given.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import e2e_load as load
from backend_compare import _server_cpu

from storage.factory import is_postgres_url, open_storage
from tests.fakediscord import FakeDiscord, RateLimits
from tests.harness import THUMBS_UP, BotProcess, cpu_seconds

REWARD = {THUMBS_UP: 10.0}  # QTUNE_REWARD_LIKE / _DISLIKE defaults; 👎 otherwise
DISLIKE = -5.0
USER_BASE = 710_000_000_000_000_000
WARM_BASE = 700_000_000_000_000_000


# --------------------------------------------------------------------------- databases
class Databases:
    """Fresh databases for runs: SQLite files in a folder, or databases on a server."""

    def __init__(self, spec: str, tmp: Path) -> None:
        self.spec = spec
        self.tmp = tmp
        self.server: Any = None
        self.admin_url: str | None = None
        self.made = 0
        self.created: list[str] = []  # databases made on an operator's server
        self.kind = "PostgreSQL" if spec == "pg" or is_postgres_url(spec) else "SQLite"

    def start(self) -> None:
        if self.spec == "pg":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.pg_server import PgServer, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise RuntimeError("no PostgreSQL server binaries; pass --db postgresql://…")
            self.server = PgServer(bindir).start(extra=())  # durable: fsync on
        elif is_postgres_url(self.spec):
            self.admin_url = self.spec

    async def fresh(self) -> str:
        self.made += 1
        if self.kind == "SQLite":
            folder = self.tmp if self.spec == "sqlite" else Path(self.spec)
            folder.mkdir(parents=True, exist_ok=True)
            return str(folder / f"bench-{self.made}.sqlite3")
        if self.server is not None:
            return self.server.create_database("bench", unix=True)
        url = await _database(self.admin_url or "", "CREATE DATABASE", self.made)
        self.created.append(url)
        return url

    def server_cpu(self, leave_out: int | None = None) -> float:
        """CPU seconds of the throwaway server so far, without ``leave_out``'s backend
        (0 for SQLite, which has none; NaN for an operator's server: not ours to read)."""
        if self.server is None:
            return 0.0 if self.kind == "SQLite" else math.nan
        total = _server_cpu(self.server.data)
        return total - (cpu_seconds(leave_out) or 0.0 if leave_out else 0.0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for url in self.created:
            with contextlib.suppress(Exception):
                await _database(self.admin_url or "", "DROP DATABASE", url)


async def _database(admin: str, verb: str, which: int | str) -> str:
    """CREATE (a new name, from a run number) or DROP (by URL) a database on ``admin``'s server."""
    import asyncpg

    if isinstance(which, str):
        name = urlsplit(which).path.lstrip("/")
    else:
        name = f"qtune_bench_{os.getpid()}_{which}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'{verb} "{name}"')
    finally:
        await conn.close()
    return urlsplit(admin)._replace(path=f"/{name}").geturl()


# --------------------------------------------------------------------------- commit poller
class PgCommitWatcher(load.CommitWatcher):
    """:class:`e2e_load.CommitWatcher` for PostgreSQL: its own thread, loop and connection."""

    SQL = (
        "SELECT message_id FROM recommendations "
        "WHERE rewarded_at IS NOT NULL AND message_id = ANY($1::bigint[])"
    )

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(Path("/nonexistent"), interval)
        self.url = url
        self.backend_pid: int | None = None  # its server process: not the bot's CPU

    def _run(self) -> None:
        asyncio.run(self._poll())

    async def _poll(self) -> None:
        import asyncpg

        conn = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None:
                    conn = await asyncpg.connect(self.url)
                    self.backend_pid = conn.get_server_pid()
                    if await conn.fetchval("SELECT to_regclass('recommendations')") is None:
                        await conn.close()
                        conn = None
                        continue
                    self.query = self.SQL
                with self._lock:
                    waiting = list(self._waiting)
                if not waiting:
                    continue
                started = time.monotonic()
                rows = await conn.fetch(self.SQL, waiting)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                conn = None
                continue
            self.polls += 1
            with self._lock:
                for row in rows:
                    self.seen.setdefault(int(row[0]), started)
                    self._waiting.discard(int(row[0]))
        if conn is not None:
            await conn.close()


# --------------------------------------------------------------------------- the cluster
class Cluster:
    """N bot processes, one shard each (or one unsharded process); looks like one bot to
    :class:`e2e_load.Phase`, which only asks whether it is running."""

    def __init__(self, procs: list[BotProcess]) -> None:
        self.procs = procs
        self.logs = [load.BotLog(p) for p in procs]

    @property
    def running(self) -> bool:
        return all(p.running for p in self.procs)

    def cpu(self) -> list[float] | None:
        """CPU seconds so far of each process (None if one cannot be read)."""
        values = [cpu_seconds(p.pid) for p in self.procs]
        return None if any(v is None for v in values) else [v or 0.0 for v in values]


class RoamingPhase(load.Phase):
    """The e2e phase with each user in the next channel every round: channels alternate
    guilds and guilds alternate shards, so in a cluster a user's rounds (and rewards to
    their one table) reach every process, as a member of several servers does."""

    async def user_loop(self, uid: int, start: float) -> None:
        rng = random.Random(self.rng.random())
        for round_no in range(self.r.rounds):
            await asyncio.sleep(max(0.0, start + round_no * self.period - time.monotonic()))
            if self.fatal is not None:
                return
            channel = self.channels[(uid + round_no) % len(self.channels)]
            await self.one_nowplaying(uid, rng, channel)


def spread_over_shards(fake: FakeDiscord, cfg: load.Config, users: int, shards: int) -> list[int]:
    """Like :func:`e2e_load.spread`, with the guilds dealt round-robin to the shards."""
    count = cfg.channels or max(20, math.ceil(users / cfg.users_per_channel))
    guilds = max(shards, min(cfg.guilds, count))
    shares = [count // guilds + (1 if i < count % guilds else 0) for i in range(guilds)]
    per_guild = [
        fake.add_guild(channels=n, shard=(i % shards, shards)).channel_ids
        for i, n in enumerate(shares)
    ]
    return [ids[i] for i in range(max(shares)) for ids in per_guild if i < len(ids)]


@dataclass
class Check:
    """Stored rewards against the reactions given (after the bots stopped)."""

    reactions: int = 0
    lost: int = 0  # a reaction given whose recommendation holds no reward
    doubled: int = 0  # a user whose reward count / visits exceed the reactions given
    wrong: int = 0  # a reward of the wrong value, or one on a message nobody reacted to
    users_off: int = 0  # users whose counters disagree with the reactions given
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.wrong or self.users_off)


async def check_rewards(target: str, reacted: list[tuple[int, int, str]]) -> Check:
    out = Check(reactions=len(reacted))
    given: dict[int, dict[int, float]] = {}
    for mid, uid, emoji in reacted:
        given.setdefault(uid, {})[mid] = REWARD.get(emoji, DISLIKE)
    storage = await open_storage(target)
    try:
        for uid, mids in given.items():
            recs = {r.message_id: r for r in await storage.recommendations_of(uid)}
            rewarded = {m: r.reward for m, r in recs.items() if r.rewarded_at is not None}
            for mid, value in mids.items():
                if mid not in rewarded:
                    out.lost += 1
                elif rewarded[mid] != value:
                    out.wrong += 1
                    out.notes.append(f"message {mid}: reward {rewarded[mid]}, expected {value}")
            out.wrong += len(set(rewarded) - set(mids))
            user = await storage.get_user(uid)
            applied = (
                (0, 0, 0.0)
                if user is None
                else (
                    user.rewards,
                    int(user.learner.visits.sum()),
                    float(user.learner.reward_sum.sum()),
                )
            )
            want = (len(mids), len(mids), sum(mids.values()))
            if applied != want:
                out.users_off += 1
                if applied[0] > want[0] or applied[1] > want[1]:
                    out.doubled += 1
                if len(out.notes) < 5:
                    out.notes.append(
                        f"user {uid}: (rewards, visits, reward sum) {applied}, expected {want}"
                    )
    finally:
        await storage.close()
    return out


@dataclass
class Run:
    db: str
    procs: int
    result: load.PhaseResult
    cpu_server: float = 0.0  # seconds over the phase
    cpu_each: list[float] = field(default_factory=list)  # each bot process's CPU seconds
    check: Check | None = None
    refused: str | None = None

    def cpu_ms(self) -> tuple[float, float]:
        r = self.result
        n = max(1, r.interactions)
        bots = (r.bot_cpu or 0.0) * r.wall_s / n * 1000
        return bots, self.cpu_server / n * 1000


async def start_cluster(
    fake: FakeDiscord, env: dict[str, str], procs: int, cwd: Path
) -> list[BotProcess]:
    started: list[BotProcess] = []
    for i in range(procs):
        extra = {} if procs == 1 else {"QTUNE_SHARD_COUNT": str(procs), "QTUNE_SHARD_IDS": str(i)}
        bot = BotProcess({**env, **extra}, cwd)
        started.append(bot)
        try:
            await bot.start_and_wait_ready(fake, load.BOT_START_TIMEOUT)
        except AssertionError as exc:
            for other in started:
                await other.stop()
            raise RuntimeError(f"bot process {i + 1} did not start\n{exc}") from None
    for shard in range(procs) if procs > 1 else ():
        await fake.wait_ready(shard_id=shard, within=30)
    return started


async def one_run(cfg: load.Config, dbs: Databases, procs: int, seed: int) -> Run:
    target = await dbs.fresh()
    tmp = Path(tempfile.mkdtemp(prefix="qtune-bench-db-"))
    users = cfg.users
    result = load.PhaseResult(level=users, name="plain", users=users, rounds=cfg.rounds)
    run = Run(dbs.kind, procs, result)
    async with FakeDiscord(rate_limits=RateLimits()) as fake:
        channels = spread_over_shards(fake, cfg, users, max(1, procs))
        env = load.load_environment(fake, target, cfg.extra_env)  # type: ignore[arg-type]
        result.channels, result.guilds = len(channels), len(fake.guilds)
        result.offered_per_s, result.period = users / cfg.period, cfg.period
        bots = await start_cluster(fake, env, procs, tmp)
        cluster = Cluster(bots)
        watcher: load.CommitWatcher = (
            PgCommitWatcher(target, cfg.poll_ms / 1000)
            if is_postgres_url(target)
            else load.CommitWatcher(Path(target), cfg.poll_ms / 1000)
        )
        try:
            watcher.start()
            await load.warm_up(fake, cluster, min(users, 20), WARM_BASE, channels)  # type: ignore[arg-type]
            phase = RoamingPhase(
                fake, cluster, watcher, result,  # type: ignore[arg-type]
                period=cfg.period, rng=random.Random(seed), user_base=USER_BASE,
                channels=channels,
            )  # fmt: skip
            poller = getattr(watcher, "backend_pid", None)
            cpu0, busy0 = cluster.cpu(), load.system_busy()
            server0 = dbs.server_cpu(poller)
            started = time.monotonic()
            gc.collect()
            gc.disable()  # as e2e_load's phases: no collector pauses on the measuring side
            probe = load.LagProbe()
            probe.start()
            try:
                await asyncio.wait_for(phase.run(), cfg.rounds * cfg.period + 60)
            finally:
                result.driver_lag_ms = await probe.stop()
                gc.enable()
            result.driver_gc_ms = probe.max_gc * 1000
            await phase.finish_commits()
            elapsed = time.monotonic() - started
            cpu1 = cluster.cpu()
            if cpu0 is not None and cpu1 is not None:
                run.cpu_each = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
                result.bot_cpu = sum(run.cpu_each) / elapsed
            run.cpu_server = dbs.server_cpu(poller) - server0
            result.other_cpu = (load.system_busy() - busy0) / elapsed - (result.bot_cpu or 0)
            with contextlib.suppress(OSError):
                result.load_avg = os.getloadavg()[0]
            lags = [log.lag_between(started, time.monotonic() + 10) for log in cluster.logs]
            result.loop_lag_ms = max((x for x in lags if x is not None), default=None)
            for log in cluster.logs:
                errors, warnings = log.problems(started, time.monotonic())
                result.errors += [f"bot log: {line}" for line in errors]
                result.warnings += len(warnings)
        finally:
            watcher.stop()
            codes = [await bot.stop() for bot in bots]
        if any(codes):
            result.errors.append(f"bot exit codes after SIGTERM: {codes}")
    run.check = await check_rewards(target, phase.reacted)
    shutil.rmtree(tmp, ignore_errors=True)
    return run


# --------------------------------------------------------------------------- the table
def median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def print_row(runs: list[Run]) -> None:
    first = runs[0]
    if first.refused:
        why = f"not run: a second process is refused at start; {first.refused}"
        print(f"| {first.db} | {first.procs} | {why} |||||||||")
        return
    rs = [r.result for r in runs]
    rate = median([r.throughput for r in rs])
    p50, p99 = median([r.p(50) for r in rs]), median([r.p(99) for r in rs])
    done99 = median([r.p(99, "completions_ms") for r in rs])
    commit99 = median([r.p(99, "commits_ms") for r in rs])
    bots = median([r.cpu_ms()[0] for r in runs])
    server = median([r.cpu_ms()[1] for r in runs])
    checks = [r.check for r in runs if r.check is not None]
    lost = sum(c.lost for c in checks)
    doubled = sum(c.doubled + c.wrong + c.users_off for c in checks)
    given = sum(c.reactions for c in checks)
    errors = sum(len(r.errors) + r.timeouts for r in rs)
    p99s = ", ".join(f"{r.p(99):.1f}" for r in rs)
    print(
        f"| {first.db} | {first.procs} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {done99:.0f} "
        f"| {commit99:.0f} | {bots:.2f} + {server:.2f} | {lost} / {doubled} of {given:,} "
        f"| {errors} | {p99s} |"
    )


def print_table(cfg: load.Config, rows: dict[tuple[str, int], list[Run]], repeat: int) -> int:
    print(
        f"\n== databases and processes: {cfg.users} users, {cfg.rounds} rounds every "
        f"{cfg.period:g} s ({cfg.users / cfg.period:.0f} interactions/s offered), median "
        f"of {repeat} run(s); load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} =="
    )
    print(
        "| database | processes | interactions/s | p50 ms | p99 ms | 👍👎 p99 ms "
        "| committed p99 ms | CPU ms/interaction (bots + server) | lost / doubled or wrong "
        "| errors + timeouts | p99 per run |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for runs in rows.values():
        print_row(runs)
    status = 0
    print("\n== targets (issue 11) ==")
    for (db, procs), runs in rows.items():
        if runs[0].refused:
            continue
        if db == "PostgreSQL" and cfg.users == 200:
            p99 = median([r.result.p(99) for r in runs])
            ok = p99 < load.TARGET_P99_MS
            print(f"  {load.verdict(ok)} PostgreSQL, {procs} process(es): p99 {p99:.1f} ms < 50 ms")
        checks = [r.check for r in runs if r.check is not None]
        bad = [c for c in checks if not c.ok]
        given = sum(c.reactions for c in checks)
        print(
            f"  {load.verdict(not bad and len(checks) == len(runs))} {db}, {procs} process(es): "
            f"every one of {given:,} reactions stored as exactly one reward of its value"
        )
        for c in bad:
            print(f"    lost {c.lost}, doubled {c.doubled}, wrong {c.wrong}: {c.notes[:3]}")
            status = 1
        if any(r.result.errors for r in runs):
            status = 1
            for r in runs:
                for line in r.result.errors[:3]:
                    print(f"    {line[:300]}")
    return status


async def compare(cfg: load.Config, specs: list[str], procs: list[int], repeat: int) -> int:
    print(
        f"qtune load by database and process count: {os.cpu_count()} CPU(s); "
        f"databases {', '.join(specs)}; processes {', '.join(map(str, procs))}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="qtune-bench-dbs-"))
    dbs = [Databases(s, tmp) for s in specs]
    rows: dict[tuple[str, int], list[Run]] = {}
    try:
        for d in dbs:
            d.start()
        combos = [(d, n) for n in procs for d in dbs]
        for number in range(repeat):
            order = combos if number % 2 == 0 else combos[::-1]
            seed = 1000 + number  # the same load for every combination of a repeat
            for d, n in order:
                key = (d.kind, n)
                if d.kind == "SQLite" and n > 1:
                    refused = "SQLite serves one process (tests/e2e/test_one_bot_per_sqlite.py)"
                    rows.setdefault(key, [Run(d.kind, n, load.PhaseResult(0, "", 0, 0))])
                    rows[key][0].refused = refused
                    continue
                run = await one_run(cfg, d, n, seed)
                r = run.result
                print(
                    f"  [{number + 1}/{repeat}] {d.kind}, {n} process(es): "
                    f"{r.throughput:.1f}/s, p50 {r.p(50):.1f} ms, p99 {r.p(99):.1f} ms, "
                    f"lost {run.check.lost if run.check else '?'}, errors {len(r.errors)}, "
                    f"timeouts {r.timeouts}, loop lag {load.fmt_ms(r.loop_lag_ms).strip()}, "
                    f"driver lag {r.driver_lag_ms:.0f} ms (gc {r.driver_gc_ms:.0f}), "
                    f"load {r.load_avg or math.nan:.1f}; CPU s per "
                    f"process {', '.join(f'{c:.1f}' for c in run.cpu_each)}",
                    flush=True,
                )
                rows.setdefault(key, []).append(run)
    finally:
        for d in dbs:
            await d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    order = sorted(rows, key=lambda k: (k[1], k[0] != "SQLite"))
    return print_table(cfg, {k: rows[k] for k in order}, repeat)
