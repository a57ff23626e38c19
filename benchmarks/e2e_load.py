"""Load and latency benchmark: the real bot, as a subprocess, against the loopback fake Discord.

    uv run python benchmarks/e2e_load.py          # 200 users (+ /simulate); 50/200/800/1600
    uv run python benchmarks/e2e_load.py --smoke  # a few seconds: the CI smoke check
    uv run python benchmarks/e2e_load.py --db sqlite,pg --procs 1,2  # see e2e_backends.py

The fake Discord (``tests/fakediscord``) runs in this process on 127.0.0.1; the bot is
``python -m bot`` with its settings in environment variables (``DISCORD_API_BASE``,
``DISCORD_GATEWAY_URL``, ``QTUNE_DB``, ``QTUNE_LOOP_LAG`` ...), exactly as an operator starts it.

Load model. Each simulated user runs a closed loop of ``--rounds`` rounds, one round every
``--period`` seconds (starting at a random offset): ``/nowplaying genre`` through the gateway,
wait for the answer and the bot's 👍/👎, think 0.2-0.8 s, react 👍 (70 %) or 👎. So N users
offer about N / period interactions per second, plus as many reactions. The /simulate phase
runs the same load while ``--sim-users`` users run ``/simulate pop_lover <max episodes>``
back to back until the load ends (a run still computing then is left to the bot, which is
stopped with SIGTERM when the level ends; ``--sim-grace`` bounds the wait for it).
Every level (50, 200, 800, 1,600 users) gets a fresh fake, bot process and database.

The floor. Each level runs twice, under the same load (the same random draws): once with
qtune and once with ``benchmarks/floor_bot.py``, a bare discord.py bot doing the same Discord
work with the fewest calls (answer, 👍, 👎; no storage, no learner). Their CPU per interaction
and its ratio are printed side by side; the order alternates between levels.
``--durable-floor`` adds a third bot, ``floor_bot.py --durable``: the floor plus the least a
bot must do to keep what qtune keeps (a Q-table per member, each suggestion and each reward
committed to SQLite with ``synchronous=FULL``), so qtune's own overhead can be told from the
cost of durable storage itself. ``--seed-learner`` adds qtune with ``QTUNE_LEARNER=seed``
(the deck's ε-greedy table), so what the default learner costs shows beside the rest.
Every user of a level is new unless ``--history N`` first gives each one N untimed rounds:
then the phase measures regulars, past a newcomer's probe and community re-weighing.

Where users are. The fake sends Discord's rate-limit headers (``tests/fakediscord/ratelimit``),
so discord.py queues as against Discord: a bot may add 1 reaction per 0.25 s per channel, so
one channel carries at most 2 /nowplaying per second. Users are spread over
``max(20, users / --users-per-channel)`` channels (2 users each by default: half the limit)
in ``--guilds`` guilds; ``--channels 20`` puts 800 users in 20 channels, where the limit, not
the bot, sets the reaction latency. Discord's global limit (50 requests/s per token) is not
modelled: a bot at 800 users would need a raised limit. A level "saturates" when the bot uses
90 % of a core or completes less than 90 % of the offered interactions.

What is measured, and how. Both processes read CLOCK_MONOTONIC, so times compare directly.
- interaction → callback: from the moment the fake writes the INTERACTION_CREATE frame to the
  bot's websocket to the moment the bot's ``POST /interactions/.../callback`` reaches the fake.
- interaction → reactions: the same start, until the bot's second reaction PUT arrives (the
  command's whole work, recommendation stored before the reactions).
- reaction → committed: from the MESSAGE_REACTION_ADD frame to the first read of the bot's
  SQLite database (a separate read-only connection, WAL) that sees the reward of that
  recommendation. A reader sees only committed transactions, so this is the commit as any
  other process (the operator CLI) sees it. Resolution: the poll interval (``--poll-ms``).
- throughput: /nowplaying answered per second over the phase.
- peak RSS: ``VmHWM`` of the bot process from /proc; it is reset at each phase start by
  writing 5 to /proc/<pid>/clear_refs, so it is the phase's peak (RSS at the phase's start
  and end are printed too).
- CPU: the bot's CPU time (/proc/<pid>/stat), this process's, and every other process's
  (/proc/stat), as shares of one core; "bot CPU per interaction" is the bot's CPU time over
  the phase divided by the /nowplaying answered, the figure that does not depend on how busy
  the machine is.
- event-loop lag: measured inside the bot (``QTUNE_LOOP_LAG=0.01``: how late a 10 ms sleep
  wakes up). The bot logs the maximum every 10 s; each phase starts right after such a line and
  its lag is the maximum of the windows that cover it (the tail of the last one is idle).
  ``--smoke`` does not wait for windows and shows the whole run's maximum (start-up included).
- driver loop lag: the same probe in this process, so a saturated measuring side is visible.

Errors are any answer that is not the expected one (an ephemeral error, "something went
wrong"), a 4xx the fake returned, an error the fake recorded, or an ERROR line in the bot's log.
Timeouts (no answer within 10 s, no 👍/👎 within 10 s) are counted apart: they are timings.
The exit code is non-zero only when the benchmark cannot run (the bot does not start, crashes,
exits uncleanly after SIGTERM with no /simulate running, nothing gets answered, no /simulate is
acknowledged; with --smoke, none is answered) or the bot answers with errors; never on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fakediscord import FakeDiscord, RateLimits, WaitTimeout
from tests.harness import THUMBS_DOWN, THUMBS_UP, BotProcess, Line, bot_environment, cpu_seconds
from tests.harness.process import OUTPUT

FLOOR_BOT = Path(__file__).with_name("floor_bot.py")
DURABLE = "floor+db"  # floor_bot.py --durable: the floor that also stores
SEED_KIND = "qtune-seed"  # qtune with QTUNE_LEARNER=seed: what the default learner adds
QTUNE_KINDS = ("qtune", SEED_KIND)
CPU_PROFILE = Path(__file__).with_name("cpu_profile.py")
OWN_REACTIONS = [THUMBS_UP, THUMBS_DOWN]
GENRES_TYPED = ("pop", "rock", "jazz", "classical", "hip hop", "HipHop", "Rock")
SIM_PROFILE = "pop_lover"
MAX_EPISODES = 100_000
CALLBACK_TIMEOUT = 10.0
REACTIONS_TIMEOUT = 10.0
SIMULATE_TIMEOUT = 300.0
COMMIT_TIMEOUT = 15.0
LAG_WINDOW_TIMEOUT = 25.0  # the bot logs its loop lag every 10 s
BOT_START_TIMEOUT = 60.0
MAX_SIM_RUNS = 200  # per simulate user and phase: a bound, never reached in practice

LAG_WINDOW = re.compile(
    r"event loop lag: max (?P<window>[\d.]+) ms in the last [\d.]+ s \((?P<total>[\d.]+) ms"
)
LAG_OVERALL = re.compile(r"event loop lag: max (?P<total>[\d.]+) ms overall")
LOG_ERROR = re.compile(r"\[(ERROR|CRITICAL)\s*\]|^Traceback ")
LOG_WARNING = re.compile(r"\[WARNING\s*\]")

TARGET_P99_MS = 50.0
TARGET_LAG_MS = 100.0
TARGET_SIM_RATIO = 2.0
TARGET_FLOOR_RATIO = 1.25


# --------------------------------------------------------------------------- the bot's log
class BotLog:
    """What the benchmark reads in the bot's output: loop-lag windows, errors and warnings.

    A listener on :class:`BotProcess`'s lines; :meth:`next_lag_window` wakes on new lines.
    """

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot
        self.lines: list[tuple[float, str]] = []  # errors and warnings, with arrival time
        self.lag_windows: list[tuple[float, float]] = []  # (arrival, window max ms)
        self.lag_total_ms: float | None = None
        self.lag_overall_ms: float | None = None
        bot.listeners.append(self._parse)

    def _parse(self, line: Line) -> None:
        if m := LAG_WINDOW.search(line.text):
            self.lag_windows.append((line.at, float(m["window"])))
            self.lag_total_ms = float(m["total"])
        elif m := LAG_OVERALL.search(line.text):
            self.lag_overall_ms = float(m["total"])
        if LOG_ERROR.search(line.text) or LOG_WARNING.search(line.text):
            self.lines.append((line.at, line.text))

    async def next_lag_window(self, after: float, within: float = LAG_WINDOW_TIMEOUT) -> float:
        """Wait for a loop-lag log line that arrives after ``after``; return its arrival time."""

        def arrived() -> float | None:
            return next((t for t, _ in self.lag_windows if t > after), None)

        try:
            return await self.bot.changes.wait_for(
                arrived, within, OUTPUT, give_up=lambda: self.bot.finished
            )
        except TimeoutError:
            raise RuntimeError(
                "the bot logged no event-loop lag line (is QTUNE_LOOP_LAG supported?)"
            ) from None

    def lag_between(self, start: float, end: float) -> float | None:
        """The largest window maximum among windows logged in (start, end]."""
        values = [ms for t, ms in self.lag_windows if start < t <= end]
        return max(values) if values else None

    def problems(self, start: float, end: float) -> tuple[list[str], list[str]]:
        errors = [ln for t, ln in self.lines if start <= t <= end and LOG_ERROR.search(ln)]
        warnings = [ln for t, ln in self.lines if start <= t <= end and LOG_WARNING.search(ln)]
        return errors, warnings


def load_environment(fake: FakeDiscord, db: Path, extra: dict[str, str]) -> dict[str, str]:
    return bot_environment(
        fake,
        db,
        # Every user sends one /nowplaying per round; a jittered schedule can put two of
        # them closer than the default 3 s cooldown, which would be an error answer.
        QTUNE_COOLDOWN="0",
        QTUNE_LOOP_LAG="0.01",
        QTUNE_MAX_EPISODES=str(MAX_EPISODES),
        QTUNE_LOG_LEVEL="INFO",
        **extra,
    )


# --------------------------------------------------------------------------- commit watcher
class CommitWatcher:
    """Polls the bot's SQLite database read-only for rewarded recommendations.

    It looks for the table that has both a ``message_id`` and a ``reward`` column (the
    recommendations) and records, for each awaited message, the start time of the first
    query that sees its reward: an upper bound of the commit time, within one poll interval.
    """

    def __init__(self, db: Path, interval: float) -> None:
        self.db = db
        self.interval = interval
        self.seen: dict[int, float] = {}
        self._waiting: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.query: str | None = None
        self.error: str | None = None
        self.polls = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-commit-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def expect(self, message_id: int) -> None:
        with self._lock:
            if message_id not in self.seen:
                self._waiting.add(message_id)

    def outstanding(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _connect(self) -> sqlite3.Connection | None:
        if not self.db.exists():
            return None
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1.0)
        con.execute("PRAGMA query_only = 1")
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
            if {"message_id", "reward"} <= cols:
                self.query = (
                    f'SELECT message_id FROM "{table}" '
                    "WHERE reward IS NOT NULL AND message_id IN ({})"
                )
                return con
        con.close()
        return None

    def _run(self) -> None:
        con: sqlite3.Connection | None = None
        while not self._stop.wait(self.interval):
            if con is None:
                try:
                    con = self._connect()
                except sqlite3.Error as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    con = None
                if con is None:
                    continue
            with self._lock:
                waiting = list(self._waiting)
            if not waiting:
                continue
            started = time.monotonic()
            found: list[int] = []
            try:
                for i in range(0, len(waiting), 500):
                    chunk = waiting[i : i + 500]
                    sql = self.query.format(",".join("?" * len(chunk)))  # type: ignore[union-attr]
                    found += [int(r[0]) for r in con.execute(sql, chunk)]
            except sqlite3.Error as exc:  # e.g. busy during a checkpoint: try again
                self.error = f"{type(exc).__name__}: {exc}"
                continue
            self.polls += 1
            with self._lock:
                for mid in found:
                    self.seen.setdefault(mid, started)
                    self._waiting.discard(mid)
        if con is not None:
            con.close()


# --------------------------------------------------------------------------- measurements
class LagProbe:
    """Event-loop lag, garbage-collector pauses and CPU time of this (the driver's) process."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self.max_gc = 0.0
        self.cpu = 0.0
        self._gc_start: float | None = None
        self._task: asyncio.Task | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start is not None:
            self.max_gc = max(self.max_gc, time.perf_counter() - self._gc_start)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.max_lag = max(self.max_lag, loop.time() - before - self.interval)

    def start(self) -> None:
        self.max_lag = self.max_gc = 0.0
        self.cpu = time.process_time()
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run(), name="bench-driver-lag")

    async def stop(self) -> float:
        """Stop; return the maximum lag in ms (``max_gc`` and ``cpu`` are in seconds)."""
        self.cpu = time.process_time() - self.cpu
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.max_lag * 1000


def system_busy() -> float:
    """CPU seconds spent by the whole machine (all cores, not idle), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class PhaseResult:
    level: int
    name: str
    users: int
    rounds: int
    bot: str = "qtune"
    period: float = 2.0
    channels: int = 1
    guilds: int = 1
    offered_per_s: float = 0.0
    rate_limited: int = 0  # requests the fake answered 429 (discord.py retries them)
    sim_users: int = 0
    sim_episodes: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    completions_ms: list[float] = field(default_factory=list)
    commits_ms: list[float] = field(default_factory=list)
    commits_missing: int = 0
    reactions: int = 0
    errors: list[str] = field(default_factory=list)
    timeouts: int = 0
    warnings: int = 0
    rss_peak_kib: int | None = None
    rss_life_kib: int | None = None
    rss_end_kib: int | None = None
    rss_start_kib: int | None = None
    rss_peak_is_phase: bool = False
    loop_lag_ms: float | None = None
    loop_lag_scope: str = ""
    driver_lag_ms: float = 0.0
    driver_gc_ms: float = 0.0
    driver_cpu: float = 0.0  # fraction of one core over the phase
    bot_cpu: float | None = None
    bot_idle_cpu: float | None = None  # with no load, measured just before the phase
    other_cpu: float | None = None  # every other process on the machine, in cores
    load_avg: float | None = None
    sim_runs: int = 0
    sim_unfinished: int = 0
    sim_defer_ms: list[float] = field(default_factory=list)
    sim_total_s: list[float] = field(default_factory=list)

    @property
    def interactions(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.interactions / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def cpu_per_interaction_ms(self) -> float:
        """The bot's CPU time per /nowplaying and its reaction (robust to a busy machine)."""
        if self.bot_cpu is None or not self.interactions:
            return math.nan
        return self.bot_cpu * self.wall_s / self.interactions * 1000

    def p(self, q: float, which: str = "latencies_ms") -> float:
        return percentile(getattr(self, which), q)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("latencies_ms", "completions_ms", "commits_ms", "sim_defer_ms", "sim_total_s"):
            values = data.pop(key)
            data[key] = {
                "n": len(values),
                **{f"p{q}": percentile(values, q) for q in (50, 95, 99, 100)},
            }
        data["throughput_per_s"] = self.throughput
        return data


class Phase:
    """One phase: N users doing /nowplaying + a reaction for R rounds, maybe with /simulate."""

    def __init__(
        self,
        fake: FakeDiscord,
        bot: BotProcess,
        watcher: CommitWatcher,
        result: PhaseResult,
        *,
        period: float,
        rng: random.Random,
        user_base: int,
        sim_grace: float = 0.0,
        channels: Sequence[int] = (),
        count_commits: bool = True,
    ) -> None:
        self.fake = fake
        self.channels = list(channels) or [fake.channel_id]
        self.count_commits = count_commits
        self.bot = bot
        self.watcher = watcher
        self.r = result
        self.period = period
        self.rng = rng
        self.user_base = user_base
        self.reacted: list[tuple[int, int, str]] = []  # (message id, user id, emoji)
        self.load_done = asyncio.Event()
        self.sim_grace = sim_grace
        self.sim_inflight = 0
        self.fatal: str | None = None

    def error(self, text: str) -> None:
        self.r.errors.append(text)

    async def run(self) -> None:
        users = [self.user_base + i for i in range(self.r.users)]
        t0 = time.monotonic() + 0.05
        loops = [self.user_loop(uid, t0 + self.rng.uniform(0, self.period)) for uid in users]
        sims = [self.sim_loop(self.user_base + 500_000 + i) for i in range(self.r.sim_users)]
        sim_tasks = [asyncio.create_task(s) for s in sims]
        started = time.monotonic()
        await asyncio.gather(*loops)
        self.r.wall_s = time.monotonic() - started
        self.load_done.set()
        if sim_tasks:
            # A /simulate still running when the load ends is left to the bot (it is stopped
            # with the level); the phase waits for it at most ``sim_grace`` seconds.
            _, pending = await asyncio.wait(sim_tasks, timeout=self.sim_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*sim_tasks, return_exceptions=True)
            self.r.sim_unfinished = self.sim_inflight

    async def user_loop(self, uid: int, start: float) -> None:
        rng = random.Random(self.rng.random())
        for round_no in range(self.r.rounds):
            await asyncio.sleep(max(0.0, start + round_no * self.period - time.monotonic()))
            if self.fatal is not None:
                return
            await self.one_nowplaying(uid, rng, self.channels[uid % len(self.channels)])

    async def command(
        self, name: str, options: dict[str, Any], uid: int, channel: int | None = None
    ) -> Any | None:
        """Send a slash command and wait for its callback; None (counted) if that fails."""
        try:
            inter = await self.fake.send_command(name, options, user_id=uid, channel_id=channel)
        except AssertionError:
            self.fatal = "no bot connected to the gateway"
            return None
        try:
            await self.fake.interaction_response(inter.id, CALLBACK_TIMEOUT)
        except WaitTimeout:
            self.r.timeouts += 1
            return None
        assert inter.callback is not None
        return inter

    async def one_nowplaying(self, uid: int, rng: random.Random, channel: int) -> None:
        fake = self.fake
        genre = rng.choice(GENRES_TYPED)
        inter = await self.command("nowplaying", {"genre": genre}, uid, channel)
        if inter is None:
            return
        sent = fake.monotonic(inter.written_at or inter.sent_at)
        answered = fake.monotonic(inter.callback.time)
        data = inter.callback_data
        content = str(data.get("content") or "")
        if inter.callback_type != 4 or int(data.get("flags") or 0) & 64 or "Try **" not in content:
            self.error(f"/nowplaying {genre!r} answered type={inter.callback_type}: {content!r}")
            return
        self.r.latencies_ms.append((answered - sent) * 1000)
        mid = inter.original_message_id
        if mid is None:
            self.error("/nowplaying: no original message")
            return
        try:
            msg = await fake.wait_for_reactions(mid, OWN_REACTIONS, within=REACTIONS_TIMEOUT)
        except WaitTimeout:
            self.r.timeouts += 1
            return
        done = max(msg.reacted_at[(e, fake.bot_user_id)] for e in OWN_REACTIONS)
        self.r.completions_ms.append((fake.monotonic(done) - sent) * 1000)
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        emoji = THUMBS_UP if rng.random() < 0.7 else THUMBS_DOWN
        self.watcher.expect(mid)
        if await fake.user_reacts(mid, uid, emoji):
            self.reacted.append((mid, uid, emoji))
            self.r.reactions += 1

    async def sim_loop(self, uid: int) -> None:
        fake = self.fake
        for _ in range(MAX_SIM_RUNS):
            if self.load_done.is_set() or self.fatal is not None:
                return
            options = {"user": SIM_PROFILE, "episodes": self.r.sim_episodes}
            started = time.monotonic()
            self.sim_inflight += 1
            inter = await self.command("simulate", options, uid)
            if inter is None:
                return
            sent = fake.monotonic(inter.written_at) if inter.written_at else started
            self.r.sim_defer_ms.append((fake.monotonic(inter.callback.time) - sent) * 1000)
            try:
                await fake.final_message(inter.id, within=SIMULATE_TIMEOUT)
            except WaitTimeout:
                self.r.timeouts += 1
                return
            self.sim_inflight -= 1
            self.r.sim_total_s.append(time.monotonic() - sent)
            msg = fake.original_message(inter.id)
            if inter.callback_type != 5 or msg is None or "Trained your table" not in msg.content:
                text = msg.content if msg is not None else None
                self.error(f"/simulate answered type={inter.callback_type}: {text!r}")
                await asyncio.sleep(1.0)  # no storm of failing /simulate calls
                continue
            if not any(a.filename.endswith(".png") for a in msg.attachments):
                self.error("/simulate answered without a PNG")
            self.r.sim_runs += 1

    async def finish_commits(self) -> None:
        if not self.count_commits:
            return  # a bot without a database (the floor)
        for _ in range(int(COMMIT_TIMEOUT / 0.05)):
            if not self.watcher.outstanding() or not self.bot.running:
                break
            if self.watcher.query is None and self.watcher.error is None:
                break  # no recommendations table in the database: nothing to wait for
            await asyncio.sleep(0.05)
        for mid, uid, emoji in self.reacted:
            written = self.fake.messages[mid].dispatched_at.get((emoji, uid))
            seen = self.watcher.seen.get(mid)
            if written is None or seen is None:
                self.r.commits_missing += 1
            else:
                self.r.commits_ms.append((seen - self.fake.monotonic(written)) * 1000)


# --------------------------------------------------------------------------- orchestration
@dataclass
class Config:
    users: int
    rounds: int
    period: float
    sim_users: int
    sim_episodes: int
    levels: list[int]
    align: bool
    poll_ms: float
    seed: int
    bot_command: list[str]
    extra_env: dict[str, str]
    keep: bool
    json_path: Path | None
    sim_grace: float = 30.0
    smoke: bool = False
    channels: int | None = None  # None: max(20, users / users_per_channel)
    users_per_channel: float = 2.0
    guilds: int = 20
    floor: bool = True
    durable_floor: bool = False  # also floor_bot.py --durable (DURABLE)
    seed_learner: bool = False  # also qtune with the seed learner (SEED_KIND)
    dbs: list[str] | None = None  # --db/--procs: the database comparison (e2e_backends.py)
    procs: list[int] | None = None
    repeat: int = 1
    profile: Path | None = None  # run both bots under benchmarks/cpu_profile.py, write here
    learner_speed: bool = True  # end with train_speed.py's figures for the default learner
    history: int = 0  # untimed rounds every user does first (--history): regulars, not newcomers


async def untimed_rounds(
    fake: FakeDiscord,
    bot: BotProcess,
    users: int,
    rounds: int,
    *,
    period: float,
    base: int,
    channels: Sequence[int],
    within: float,
) -> None:
    """``rounds`` unmeasured rounds for ``users`` users from id ``base`` (no commit watcher,
    no results kept): the warm-up and ``--history``."""
    phase = Phase(
        fake,
        bot,
        CommitWatcher(Path("/nonexistent"), 1.0),
        PhaseResult(level=0, name="untimed", users=users, rounds=rounds),
        period=period,
        rng=random.Random(0),
        user_base=base,
        channels=channels,
        count_commits=False,
    )
    await asyncio.wait_for(phase.run(), within)


async def warm_up(
    fake: FakeDiscord, bot: BotProcess, n: int, base: int, channels: Sequence[int]
) -> None:
    """A few untimed interactions: the first ones pay for lazy imports and caches."""
    await untimed_rounds(fake, bot, n, 1, period=0.2, base=base, channels=channels, within=60)


async def give_history(
    fake: FakeDiscord, bot: BotProcess, cfg: Config, users: int, base: int, channels: Sequence[int]
) -> None:
    """``cfg.history`` untimed rounds for the users the phase then measures (same ids, same
    pace), so they arrive as regulars: past a newcomer's probe (5 reactions) and community
    re-weighing (20). Without it every member of the benchmark is new. The time allowed is
    4× the rounds' length, so a saturated bot that falls behind still gets through."""
    within = cfg.history * cfg.period * 4 + 60
    await untimed_rounds(
        fake, bot, users, cfg.history, period=cfg.period, base=base, channels=channels,
        within=within,
    )  # fmt: skip
    print(f"  history: {cfg.history} untimed rounds for each of {users} users")


def spread(fake: FakeDiscord, cfg: Config, users: int) -> list[int]:
    """Guilds and channels for ``users`` (before the bot connects); the channel ids in use.

    Discord lets a bot add 1 reaction per 0.25 s per channel, so a channel carries at most
    2 /nowplaying per second with their 👍 and 👎: the default spreads users so that each
    channel is offered about half of that, and the latencies measure the bot, not the limit.
    """
    count = cfg.channels or max(20, math.ceil(users / cfg.users_per_channel))
    guilds = max(1, min(cfg.guilds, count))
    shares = [count // guilds + (1 if i < count % guilds else 0) for i in range(guilds)]
    per_guild = [[fake.channel_id, *fake.add_channels(shares[0] - 1)]]
    per_guild += [fake.add_guild(channels=n).channel_ids for n in shares[1:]]
    # Interleaved, so that consecutive users land in different guilds.
    return [ids[i] for i in range(max(shares)) for ids in per_guild if i < len(ids)]


async def run_phase(
    cfg: Config,
    fake: FakeDiscord,
    bot: BotProcess,
    log: BotLog,
    watcher: CommitWatcher,
    result: PhaseResult,
    rng: random.Random,
    user_base: int,
    channels: Sequence[int],
) -> PhaseResult:
    window_start = None
    if cfg.align:
        # The wait for the next loop-lag window is idle time: the bot's baseline CPU. The
        # floor logs no loop lag; it idles 2 s instead.
        idle_from, idle_cpu = time.monotonic(), cpu_seconds(bot.pid)
        if result.bot in QTUNE_KINDS:
            window_start = await log.next_lag_window(time.monotonic())
        else:
            await asyncio.sleep(2.0)
        idle_cpu_end, idle_s = cpu_seconds(bot.pid), time.monotonic() - idle_from
        if idle_cpu is not None and idle_cpu_end is not None and idle_s >= 1.0:
            result.bot_idle_cpu = (idle_cpu_end - idle_cpu) / idle_s
    request_mark = len(fake.requests)
    error_mark = len(fake.errors)
    result.rss_start_kib = bot.memory_kib().get("VmRSS")
    result.rss_peak_is_phase = bot.reset_peak_memory()
    gc.collect()
    gc.disable()  # the fake keeps every request: no collector pauses on the measuring side
    probe = LagProbe()
    probe.start()
    bot_cpu = cpu_seconds(bot.pid)
    if cfg.profile is not None and result.name == "plain":
        os.kill(bot.pid, signal.SIGUSR1)  # the sampler starts counting
    busy = system_busy()
    phase = Phase(
        fake,
        bot,
        watcher,
        result,
        period=cfg.period,
        rng=rng,
        user_base=user_base,
        sim_grace=cfg.sim_grace,
        channels=channels,
        count_commits=result.bot != "floor",
    )
    started = time.monotonic()
    budget = cfg.rounds * cfg.period + 60 + cfg.sim_grace
    try:
        await asyncio.wait_for(phase.run(), budget)
    except TimeoutError:
        result.errors.append(f"phase did not finish within {budget:.0f} s")
    await phase.finish_commits()
    ended = time.monotonic()
    result.driver_lag_ms = await probe.stop()
    gc.enable()  # after the probe stopped: the deferred collection runs now, unmeasured
    busy = system_busy() - busy
    result.driver_gc_ms = probe.max_gc * 1000
    result.driver_cpu = probe.cpu / (ended - started)
    bot_cpu_end = cpu_seconds(bot.pid)
    if cfg.profile is not None and result.name == "plain":
        await write_profile(bot, profile_path(cfg.profile, result.bot, result.users))
    if bot_cpu is not None and bot_cpu_end is not None:
        result.bot_cpu = (bot_cpu_end - bot_cpu) / (ended - started)
        result.other_cpu = busy / (ended - started) - result.bot_cpu - result.driver_cpu
    with contextlib.suppress(OSError, ValueError, IndexError):
        result.load_avg = os.getloadavg()[0]
    status = bot.memory_kib()
    result.rss_peak_kib = status.get("VmHWM")
    result.rss_end_kib = status.get("VmRSS")
    if phase.fatal is not None:
        raise RuntimeError(f"{phase.fatal}\n{bot.describe(tail=60)}")
    if cfg.align and window_start is not None:
        window_end = await log.next_lag_window(ended)
        result.loop_lag_ms = log.lag_between(window_start, window_end)
        result.loop_lag_scope = "phase"
    for req in fake.requests[request_mark:]:
        if req.status == 429:
            result.rate_limited += 1
        elif req.status is not None and req.status >= 400:
            result.errors.append(f"fake answered {req.status} to {req.method} {req.path}")
    result.errors += [f"fake: {e}" for e in fake.errors[error_mark:]]
    log_errors, log_warnings = log.problems(started, time.monotonic())
    result.errors += [f"bot log: {line}" for line in log_errors]
    result.warnings = len(log_warnings)
    if log_warnings:
        print(f"  ({len(log_warnings)} warning(s) in the bot log, e.g. {log_warnings[0]})")
    return result


async def run_level(
    cfg: Config, users: int, with_sim: bool, rng: random.Random, kind: str = "qtune"
) -> list[PhaseResult]:
    """Start the fake and a fresh bot (qtune or the floor), run the plain phase (and the
    /simulate one), stop."""
    tmp = Path(tempfile.mkdtemp(prefix=f"qtune-bench-{kind}-{users}-"))
    results: list[PhaseResult] = []
    async with FakeDiscord(rate_limits=RateLimits()) as fake:
        channels = spread(fake, cfg, users)
        extra = {**cfg.extra_env, "QTUNE_LEARNER": "seed"} if kind == SEED_KIND else cfg.extra_env
        env = load_environment(fake, tmp / "qtune.sqlite3", extra)
        command = {
            "qtune": cfg.bot_command,
            SEED_KIND: cfg.bot_command,
            "floor": [sys.executable, str(FLOOR_BOT)],
            DURABLE: [sys.executable, str(FLOOR_BOT), "--durable"],
        }[kind]
        if cfg.profile is not None:
            command = profiled(command, profile_path(cfg.profile, kind, users))
        bot = BotProcess(env, tmp, command=command)
        log = BotLog(bot)
        watcher = CommitWatcher(tmp / "qtune.sqlite3", cfg.poll_ms / 1000)
        try:
            t_start = time.monotonic()
            try:
                await bot.start_and_wait_ready(fake, BOT_START_TIMEOUT)
            except AssertionError as exc:
                raise RuntimeError(f"the bot did not connect to the fake\n{exc}") from None
            if not fake.commands.get(fake.guild_id):
                raise RuntimeError(f"the bot synced no commands\n{bot.describe(tail=60)}")
            print(
                f"[{users} users, {kind}] bot pid {bot.pid} connected in "
                f"{time.monotonic() - t_start:.1f} s; {len(channels)} channels in "
                f"{len(fake.guilds)} guilds; data in {tmp}"
            )
            watcher.start()
            await warm_up(fake, bot, min(users, 20), 700_000_000_000_000_000, channels)
            base = 710_000_000_000_000_000
            if cfg.history:
                await give_history(fake, bot, cfg, users, base, channels)
            plain = PhaseResult(
                level=users,
                name="plain",
                users=users,
                rounds=cfg.rounds,
                bot=kind,
                channels=len(channels),
                guilds=len(fake.guilds),
                offered_per_s=users / cfg.period,
                period=cfg.period,
            )
            results.append(
                await run_phase(cfg, fake, bot, log, watcher, plain, rng, base, channels)
            )
            print_phase(plain)
            if with_sim:
                sim = PhaseResult(
                    level=users,
                    name="simulate",
                    users=users,
                    rounds=cfg.rounds,
                    sim_users=cfg.sim_users,
                    sim_episodes=cfg.sim_episodes,
                    channels=len(channels),
                    guilds=len(fake.guilds),
                    offered_per_s=users / cfg.period,
                    period=cfg.period,
                )
                results.append(
                    await run_phase(
                        cfg, fake, bot, log, watcher, sim, rng, base + 1_000_000, channels
                    )
                )
                print_phase(sim)
            life = bot.memory_kib().get("VmHWM")
        finally:
            watcher.stop()
            stopping = time.monotonic()
            rc = await bot.stop()
            stop_s = time.monotonic() - stopping
            if cfg.keep:
                (tmp / "bot.log").write_text(bot.output)
        if watcher.error and not any(r.commits_ms for r in results):
            print(f"  commit watcher: {watcher.error}")
        busy = sum(r.sim_unfinished for r in results)
        if rc != 0 and busy:
            print(
                f"  NOTE: the bot did not exit within {stop_s:.0f} s of SIGTERM while {busy} "
                f"/simulate run(s) were still computing; it was killed (exit code {rc})"
            )
        elif rc != 0:
            raise RuntimeError(
                f"the bot exited with code {rc} after SIGTERM\n{bot.describe(tail=60)}"
            )
        else:
            print(f"  bot stopped by SIGTERM in {stop_s:.1f} s, exit code 0")
        for res in results:
            if not cfg.align and kind in QTUNE_KINDS:
                res.loop_lag_ms = log.lag_overall_ms or log.lag_total_ms
                res.loop_lag_scope = "whole run"
            res.rss_life_kib = life if res.rss_peak_is_phase else res.rss_peak_kib
        if results and not cfg.align and kind in QTUNE_KINDS:
            lag = fmt_ms(results[0].loop_lag_ms)
            print(f"  bot event-loop lag, max over the whole run (start-up included): {lag}")
    if not cfg.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- profiling
def profile_path(folder: Path, kind: str, users: int) -> Path:
    return folder / f"{kind}-{users}.json"


def profiled(command: list[str], out: Path) -> list[str]:
    """The bot's command line under the CPU-clock sampler (``-m bot`` or a script)."""
    python, *rest = command
    if rest[:2] == ["-m", "bot"]:
        return [python, str(CPU_PROFILE), "--out", str(out), "-m", "bot", *rest[2:]]
    return [python, str(CPU_PROFILE), "--out", str(out), *rest]


def profile_written(out: Path, *, clear: bool = False) -> bool:
    """Whether the profile ``out`` exists (a stat; ``clear`` removes an old one first)."""
    if clear:
        out.unlink(missing_ok=True)
    return out.exists()


async def write_profile(bot: BotProcess, out: Path) -> None:
    """Ask the sampler in the bot (SIGUSR2) for the phase's profile; wait for the file."""
    profile_written(out, clear=True)
    os.kill(bot.pid, signal.SIGUSR2)
    for _ in range(600):  # 30 s: a saturated bot runs the handler seconds late
        if profile_written(out):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the bot under the sampler wrote no profile to {out}")


def print_profiles(folder: Path, results: list[PhaseResult]) -> None:
    """Every bot's main-thread CPU side by side, per interaction (qtune, the floors)."""
    from benchmarks.cpu_profile import report

    for users in sorted({r.users for r in results}):
        pair = [r for r in results if r.users == users and r.name == "plain"]
        paths = [profile_path(folder, r.bot, users) for r in pair]
        if len(pair) >= 2 and all(p.exists() for p in paths):
            print(f"\n== where the CPU goes, {users} users (benchmarks/cpu_profile.py) ==")
            print(report(paths, [r.interactions for r in pair]))


# --------------------------------------------------------------------------- printing
def fmt_ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "  n/a"
    return f"{value:6.1f} ms" if value < 1000 else f"{value / 1000:6.2f} s"


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def print_phase(r: PhaseResult) -> None:
    extra = (
        f" + {r.sim_users} users running /simulate {r.sim_episodes:,} episodes"
        if r.sim_users
        else ""
    )
    print(
        f"== {r.bot}: {r.users} users in {r.channels} channels of {r.guilds} guilds, "
        f"{r.rounds} rounds{extra} =="
    )
    print(
        f"  interaction → callback      p50 {fmt_ms(r.p(50))}  p95 {fmt_ms(r.p(95))}  "
        f"p99 {fmt_ms(r.p(99))}  max {fmt_ms(r.p(100))}  (n={r.interactions})"
    )
    print(
        f"  interaction → 👍👎 added     p50 {fmt_ms(r.p(50, 'completions_ms'))}  "
        f"p95 {fmt_ms(r.p(95, 'completions_ms'))}  p99 {fmt_ms(r.p(99, 'completions_ms'))}"
    )
    missing = f", {r.commits_missing} never seen" if r.commits_missing else ""
    print(
        f"  reaction → committed        p50 {fmt_ms(r.p(50, 'commits_ms'))}  "
        f"p99 {fmt_ms(r.p(99, 'commits_ms'))}  max {fmt_ms(r.p(100, 'commits_ms'))}  "
        f"(n={len(r.commits_ms)}{missing})"
    )
    print(
        f"  throughput                  {r.throughput:.1f} interactions/s "
        f"(+ {r.reactions / r.wall_s if r.wall_s else 0:.1f} reactions/s) over {r.wall_s:.1f} s"
    )
    scope = "phase peak" if r.rss_peak_is_phase else "process-life peak"
    print(
        f"  bot peak RSS                {mib(r.rss_peak_kib)} ({scope}; "
        f"{mib(r.rss_start_kib)} at its start, {mib(r.rss_end_kib)} at its end)"
    )
    if r.loop_lag_scope == "phase":
        print(f"  bot event-loop lag, max     {fmt_ms(r.loop_lag_ms)}")
    if r.sim_users:
        defer50, defer_max = percentile(r.sim_defer_ms, 50), percentile(r.sim_defer_ms, 100)
        print(
            f"  /simulate                   {r.sim_runs} answered, {r.sim_unfinished} still "
            f"running at the end; defer p50 {fmt_ms(defer50)} "
            f"max {fmt_ms(defer_max)}; answered in {percentile(r.sim_total_s, 50):.2f} s "
            f"(p50), {percentile(r.sim_total_s, 100):.2f} s (max)"
        )
    print(
        f"  errors                      {len(r.errors)} error response(s), {r.timeouts} "
        f"timeout(s), {r.rate_limited} request(s) answered 429"
    )
    for line in r.errors[:5]:
        print(f"    {line[:300]}")
    bot_cpu = "n/a" if r.bot_cpu is None else f"{r.bot_cpu:.0%}"
    others = "n/a" if r.other_cpu is None else f"{max(0.0, r.other_cpu):.0%}"
    print(
        f"  CPU, share of one core      bot {bot_cpu}, driver + fake {r.driver_cpu:.0%}, "
        f"other processes {others} (load average {r.load_avg or math.nan:.1f})"
    )
    idle = "" if r.bot_idle_cpu is None else f"; {r.bot_idle_cpu:.0%} of a core when idle"
    print(
        f"  bot CPU per interaction     {r.cpu_per_interaction_ms:.2f} ms "
        f"(one /nowplaying with its reaction, all bot CPU included{idle})"
    )
    print(
        f"  driver loop lag, max        {fmt_ms(r.driver_lag_ms)} (the measuring side; "
        f"longest GC pause {r.driver_gc_ms:.1f} ms)"
    )


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("MET " if ok else "MISS")


def saturated(r: PhaseResult) -> bool:
    """The bot uses 90 % of a core: the level where it, not the machine, is the limit."""
    return r.bot_cpu is not None and r.bot_cpu >= 0.9


def behind(r: PhaseResult) -> bool:
    """The users fell a round behind their schedule (``rounds`` rounds a ``period`` apart):
    the load was not served in time, whether by a busy bot or a busy machine."""
    return r.wall_s > (r.rounds + 1) * r.period


def print_summary(results: list[PhaseResult], headline: int) -> None:
    print("\n== scaling (users spread over channels and guilds; Discord's rate limits) ==")
    print(
        "  users  bot         phase     chans  offered/s  done/s   p50 ms   p99 ms  👍👎 p99  "
        "t/o  429  bot CPU  ms/int  peak RSS"
    )
    for r in results:
        cpu = "n/a" if r.bot_cpu is None else f"{r.bot_cpu:.0%}"
        print(
            f"  {r.users:5d}  {r.bot:10s}  {r.name:8s} {r.channels:5d}  {r.offered_per_s:9.0f}  "
            f"{r.throughput:6.1f}  {r.p(50):7.1f}  {r.p(99):7.1f}  "
            f"{r.p(99, 'completions_ms'):8.0f}  {r.timeouts:3d}  {r.rate_limited:3d}  "
            f"{cpu:>7s}  {r.cpu_per_interaction_ms:6.2f}  {mib(r.rss_peak_kib):>9s}"
            + ("  saturated" if saturated(r) else "")
            + ("  behind" if behind(r) else "")
        )
    print(
        "  (bot CPU: share of one core; ms/int: bot CPU per /nowplaying with its reaction;\n"
        "   saturated: the bot used 90 % of a core; behind: the users fell a round behind)"
    )
    plain = {(r.level, r.bot): r for r in results if r.name == "plain"}
    levels = sorted({lvl for lvl, _ in plain})
    pairs = [(plain[(n, "qtune")], plain[(n, "floor")]) for n in levels if (n, "floor") in plain]
    if pairs:
        print("\n== floor: qtune against a bare discord.py bot, same fake, same load, same run ==")
        print("  users  qtune ms/int  floor ms/int  ratio  ratio without idle CPU")
        for q, f in pairs:
            print(
                f"  {q.users:5d}  {q.cpu_per_interaction_ms:12.2f}  "
                f"{f.cpu_per_interaction_ms:12.2f}  {ratio(q, f):5.2f}  "
                f"{ratio(q, f, idle=True):5.2f}"
            )
    durable = [
        (plain[(n, "qtune")], plain[(n, DURABLE)], plain.get((n, "floor")))
        for n in levels
        if (n, DURABLE) in plain
    ]
    if durable:
        print("\n== the floor with storage (floor_bot.py --durable), same load, same run ==")
        print("  users  floor+db ms/int  floor+db / floor  qtune / floor+db")
        for q, d, f in durable:
            over_floor = f"{ratio(d, f):16.2f}" if f is not None else f"{'n/a':>16s}"
            print(
                f"  {q.users:5d}  {d.cpu_per_interaction_ms:15.2f}  {over_floor}  "
                f"{ratio(q, d):16.2f}"
            )
    seeded = [
        (plain[(n, "qtune")], plain[(n, SEED_KIND)]) for n in levels if (n, SEED_KIND) in plain
    ]
    if seeded:
        print("\n== qtune with the seed learner (QTUNE_LEARNER=seed), same load, same run ==")
        print("  users  seed ms/int  p99 ms  👍👎 p99  bot CPU  qtune / qtune with seed")
        for q, sd in seeded:
            cpu = "n/a" if sd.bot_cpu is None else f"{sd.bot_cpu:.0%}"
            print(
                f"  {q.users:5d}  {sd.cpu_per_interaction_ms:11.2f}  {sd.p(99):6.1f}  "
                f"{sd.p(99, 'completions_ms'):8.0f}  {cpu:>7s}  {ratio(q, sd):23.2f}"
            )
    qtune = [r for r in results if r.name == "plain" and r.bot == "qtune"]
    first = next((r for r in qtune if saturated(r)), None)
    where = f"at {first.users} users" if first else "not within the levels run"
    print(f"  qtune saturates a core {where}")
    print_targets(results, headline, pairs)


def ratio(q: PhaseResult, f: PhaseResult, *, idle: bool = False) -> float:
    """qtune's CPU per interaction over the floor's (optionally minus each one's idle CPU)."""
    qc, fc = q.cpu_per_interaction_ms, f.cpu_per_interaction_ms
    if idle:
        qc -= (q.bot_idle_cpu or 0.0) * q.wall_s / max(1, q.interactions) * 1000
        fc -= (f.bot_idle_cpu or 0.0) * f.wall_s / max(1, f.interactions) * 1000
    return qc / fc if fc > 0 else math.nan


def print_targets(
    results: list[PhaseResult], headline: int, pairs: list[tuple[PhaseResult, PhaseResult]]
) -> None:
    print(f"\n== targets (issue 14; headline {headline} users) ==")
    for q, f in pairs:
        if q.users in (200, 800):
            r = ratio(q, f)
            print(f"  {verdict(r <= TARGET_FLOOR_RATIO)} {q.users} users: ×{r:.2f} the floor's CPU")
    at = next((r for r in results if r.users == 800 and r.bot == "qtune"), None)
    if at is not None:
        p99, done = at.p(99), at.p(99, "completions_ms")
        print(f"  {verdict(p99 < TARGET_P99_MS)} 800 users: p99 interaction {p99:.1f} ms < 50 ms")
        print(f"  {verdict(done < 1000)} 800 users: p99 interaction → 👍👎 {done:.0f} ms < 1 s")
        print(f"  {verdict(at.timeouts == 0)} 800 users: {at.timeouts} timeouts")
    head = [r for r in results if r.level == headline and r.bot == "qtune"]
    plain = next((r for r in head if r.name == "plain"), None)
    sim = next((r for r in head if r.name == "simulate"), None)
    for r in (plain, sim):
        if r is not None:
            ok = None if r.loop_lag_ms is None else r.loop_lag_ms < TARGET_LAG_MS
            print(
                f"  {verdict(ok)} max event-loop lag ({r.name}, {headline} users) "
                f"{fmt_ms(r.loop_lag_ms)} < {TARGET_LAG_MS:g} ms"
            )
    errors = sum(len(r.errors) for r in results)
    print(f"  {verdict(errors == 0)} no error responses ({errors} in all phases)")
    if plain is not None and sim is not None:
        r = sim.p(99) / plain.p(99)
        print(
            f"  {verdict(r <= TARGET_SIM_RATIO)} /simulate phase p99 within "
            f"{TARGET_SIM_RATIO:g}× of plain: ×{r:.2f} (p50 ×{sim.p(50) / plain.p(50):.2f})"
        )


def print_learner_speed(*, smoke: bool) -> None:
    """train_speed.py's figures for the default learner, measured here after the load (the
    bots have stopped), so the one command reports them with the floor and the scaling."""
    from train_speed import SIMULATE_EPISODES, learner_speed

    repeat = 3

    print("\n== the default learner's speed (train_speed.py, pop_lover, per CPU second) ==")
    if smoke:  # proves it runs; a few hundred steps are no measurement
        speed = learner_speed(steps=2_000, dyna_steps=200, repeat=1, simulate_episodes=200)
        print(f"  (smoke: {speed.dyna:,.0f} dyna steps/s; not a measurement)")
        return
    speed = learner_speed(repeat=repeat)
    print("\n".join(speed.lines()))
    print(f"  (best of {repeat}; the /simulate line is one {SIMULATE_EPISODES:,}-step chain)")


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        description="Load and latency of the real bot against the loopback fake Discord."
    )
    parser.add_argument("--users", type=int, default=200, help="users in the headline run")
    parser.add_argument("--rounds", type=int, default=6, help="/nowplaying + reaction per user")
    parser.add_argument("--period", type=float, default=2.0, help="seconds between a user's rounds")
    parser.add_argument("--sim-users", type=int, default=5)
    parser.add_argument("--sim-episodes", type=int, default=MAX_EPISODES)
    parser.add_argument(
        "--sim-grace",
        type=float,
        default=30.0,
        help="seconds the /simulate phase waits, after the load, for simulations still running",
    )
    parser.add_argument(
        "--channels",
        type=int,
        default=None,
        help="text channels the users are spread over (default: max(20, users / "
        "--users-per-channel))",
    )
    parser.add_argument("--users-per-channel", type=float, default=2.0)
    parser.add_argument("--guilds", type=int, default=20, help="guilds the channels are in")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the bare discord.py bot (the floor)"
    )
    parser.add_argument(
        "--durable-floor",
        action="store_true",
        help="also run the floor that stores what qtune stores (floor_bot.py --durable)",
    )
    parser.add_argument(
        "--seed-learner",
        action="store_true",
        help="also run qtune with QTUNE_LEARNER=seed, so the default learner's cost shows",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="untimed rounds every user does before a level is measured (regulars; default 0)",
    )
    parser.add_argument(
        "--scaling",
        default="50,200,800,1600",
        help="user counts for the scaling runs (comma list; empty for none)",
    )
    parser.add_argument(
        "--no-learner-speed",
        action="store_true",
        help="skip the default learner's speed (train_speed.py's figures, after the load)",
    )
    parser.add_argument("--poll-ms", type=float, default=2.0, help="database poll interval")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--bot-command",
        default=None,
        help="the bot's command line (default: this Python with -m bot)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra bot setting"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and bot logs")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run both bots under benchmarks/cpu_profile.py; their phase profiles go here",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds: 10 users, 2 rounds, small simulate"
    )
    parser.add_argument(
        "--db",
        help="compare databases instead (comma list): sqlite, a folder for SQLite files, pg "
        "(a throwaway PostgreSQL server) or a postgresql:// URL (a database per run is made)",
    )
    parser.add_argument("--procs", help="bot processes per database, comma list (default 1,2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per --db/--procs row")
    args = parser.parse_args(argv)
    extra = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--env wants NAME=VALUE, got {item!r}")
        extra[name] = value
    levels = [int(x) for x in args.scaling.split(",") if x.strip()]
    cfg = Config(
        users=args.users,
        rounds=args.rounds,
        period=args.period,
        sim_users=args.sim_users,
        sim_episodes=args.sim_episodes,
        levels=levels,
        align=True,
        poll_ms=args.poll_ms,
        seed=args.seed,
        bot_command=(
            shlex.split(args.bot_command) if args.bot_command else [sys.executable, "-m", "bot"]
        ),
        extra_env=extra,
        keep=args.keep,
        json_path=args.json,
        sim_grace=args.sim_grace,
        channels=args.channels,
        users_per_channel=args.users_per_channel,
        guilds=args.guilds,
        floor=not args.no_floor,
        durable_floor=args.durable_floor,
        seed_learner=args.seed_learner,
        profile=args.profile,
        learner_speed=not args.no_learner_speed,
        history=args.history,
    )
    if args.db or args.procs:
        cfg.dbs = (args.db or "sqlite,pg").split(",")
        cfg.procs = [int(x) for x in (args.procs or "1,2").split(",")]
        cfg.repeat = args.repeat
    if args.smoke:
        cfg.users, cfg.rounds, cfg.period = 10, 2, 0.5
        cfg.sim_users, cfg.sim_episodes, cfg.sim_grace = 2, 200, 60.0
        cfg.levels, cfg.align, cfg.smoke = [], False, True
        cfg.durable_floor = cfg.seed_learner = cfg.floor  # CI sees every bot kind start
    for name in ("users", "rounds", "sim_episodes"):
        if getattr(cfg, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.history < 0:
        parser.error("--history must be at least 0")
    if not 0 < cfg.period <= 60 or cfg.sim_users < 0 or cfg.sim_episodes > MAX_EPISODES:
        parser.error("--period must be in (0, 60], --sim-users >= 0, --sim-episodes <= 100000")
    return cfg


async def main_async(cfg: Config) -> int:
    if cfg.dbs is not None and cfg.procs is not None:
        from e2e_backends import compare

        return await compare(cfg, cfg.dbs, cfg.procs, cfg.repeat)
    rng = random.Random(cfg.seed)
    if cfg.profile is not None:
        cfg.profile.mkdir(parents=True, exist_ok=True)  # the samplers write into it
    print(
        f"qtune load benchmark: bot = {' '.join(cfg.bot_command)}; {os.cpu_count()} CPU(s); "
        f"{cfg.rounds} rounds, one every {cfg.period:g} s per user; "
        f"commit polled every {cfg.poll_ms:g} ms"
    )
    results: list[PhaseResult] = []
    levels = [cfg.users] + [n for n in cfg.levels if n != cfg.users]
    for number, users in enumerate(levels):
        kinds = (["floor"] if cfg.floor else []) + ([DURABLE] if cfg.durable_floor else [])
        kinds += [SEED_KIND] if cfg.seed_learner else []
        kinds.append("qtune")
        if number % 2:
            kinds.reverse()  # alternate who runs first, so a drifting machine favours neither
        seed = rng.randrange(1 << 30)
        for kind in kinds:
            with_sim = kind == "qtune" and users == cfg.users and cfg.sim_users > 0
            load = random.Random(seed)  # the same load for both bots
            results += await run_level(cfg, users, with_sim=with_sim, rng=load, kind=kind)
    # The scaling runs in increasing order; the headline's /simulate phase stays with it.
    wanted = sorted(set(cfg.levels) | {cfg.users})
    order = {"floor": 0, DURABLE: 1, SEED_KIND: 2, "qtune": 3}
    ordered = sorted(
        (r for r in results if r.level in wanted), key=lambda r: (r.level, order[r.bot])
    )
    if cfg.smoke:
        print("\nsmoke run: it proves the benchmark runs; its timings are not measurements")
        pairs = [(q, f) for q in ordered for f in ordered if q.bot == "qtune" != f.bot]
        for q, f in pairs[:1]:
            print(f"  (qtune/floor CPU per interaction here: ×{ratio(q, f):.2f})")
    else:
        print_summary(ordered, cfg.users)
    if cfg.learner_speed:
        print_learner_speed(smoke=cfg.smoke)
    if cfg.profile is not None:
        print_profiles(cfg.profile, ordered)
    if cfg.json_path is not None:
        cfg.json_path.write_text(json.dumps([r.summary() for r in ordered], indent=2))
    if not any(r.interactions for r in results):
        print("FAILED: no interaction was answered", file=sys.stderr)
        return 1
    sims = [r for r in results if r.name == "simulate"]
    if sims and not any(r.sim_defer_ms for r in sims):
        print("FAILED: no /simulate was acknowledged", file=sys.stderr)
        return 1
    if sims and cfg.smoke and not any(r.sim_runs for r in sims):
        print("FAILED: no /simulate was answered", file=sys.stderr)
        return 1
    answered_errors = sum(len(r.errors) for r in results)
    if answered_errors:
        print(f"FAILED: {answered_errors} error response(s)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        return asyncio.run(main_async(cfg))
    except RuntimeError as exc:
        print(f"FAILED: the benchmark cannot run: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
