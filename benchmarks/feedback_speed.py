"""How fast are durable rewards through the service, against a plain sqlite3 loop?

    uv run python benchmarks/feedback_speed.py [--sync FULL|NORMAL|both] [--events N]
    uv run python benchmarks/feedback_speed.py --db auto|postgresql://… [--processes 1,2]

With ``--db`` it prints SQLite and PostgreSQL side by side instead, for 1 and 2 bot
processes (see ``benchmarks/backend_compare.py``); ``auto`` starts a throwaway durable
server. Otherwise:

1. 100 concurrent simulated users each do recommend → record → feedback through
   :class:`QTuneService` on a temp file. A feedback call returns only after its commit,
   so every counted event is durable (at the chosen ``synchronous`` level).
2. One interaction at a time (recommend → record → feedback, the default learner): CPU on
   the SQLite thread and the event loop, and wall time, per interaction; nothing shares a
   commit.
3. The same work per event with plain ``sqlite3`` in one loop: read the user, choose,
   insert the recommendation, read it back, TD-update, write the user, mark the
   recommendation, commit. Same schema, same encoding, same engine calls, same pragmas.
4. Bytes per user after 10,000 users × 20 recommendations (all rewarded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.engine.learners import make_learner
from bot.engine.qlearning import DEFAULT_GENRES
from bot.service import QTuneService
from storage.base import Recommendation, UserRecord
from storage.schema import GENRE_SEP, decode_state, encode_state
from storage.sqlite import SQLiteStorage

USERS = 100
CPU_US: dict[str, list[float]] = {"service": [], "plain": []}  # process CPU per event
LEARNER = "seed"


async def service_run(
    path: Path, sync: str, events: int, think_s: float = 0.0
) -> tuple[float, np.ndarray]:
    """(events/s, per-feedback latencies in s) for USERS concurrent users.

    ``think_s`` > 0 paces each user (exponential pauses with that mean), as real people
    do; 0 saturates the storage (a closed loop: latency is then queueing by design).
    """
    st = await SQLiteStorage.open(path, synchronous=sync)
    svc = QTuneService(st, learner=make_learner(LEARNER), rng=np.random.default_rng(1))
    per_user = events // USERS
    latencies: list[float] = []

    async def user(uid: int) -> None:
        rng = np.random.default_rng(uid)
        for k in range(per_user):
            if think_s:
                await asyncio.sleep(rng.exponential(think_s))
            s = await svc.recommend(uid, DEFAULT_GENRES[int(rng.integers(5))])
            await svc.record(uid * 1_000_000 + k, s, 1, 2)
            t0 = time.perf_counter()
            result = await svc.feedback(uid * 1_000_000 + k, uid, bool(rng.random() < 0.7))
            latencies.append(time.perf_counter() - t0)
            assert result.applied

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(user(u) for u in range(1, USERS + 1)))
    elapsed = time.perf_counter() - t0
    CPU_US["service"].append((time.process_time() - cpu0) / (per_user * USERS) * 1e6)
    await st.close()
    return per_user * USERS / elapsed, np.array(latencies)


async def one_at_a_time(path: Path, sync: str, events: int) -> tuple[float, float, float]:
    """µs per interaction (recommend → record → feedback, one at a time, 100 members with
    a table, the bot's default learner) of CPU on the SQLite thread and on the event loop,
    and of wall time. With nothing to share a commit with, every durable transaction pays
    its own fsync."""
    st = await SQLiteStorage.open(path, synchronous=sync)
    svc = QTuneService(st, rng=np.random.default_rng(1))
    thread = next(t for t in threading.enumerate() if t.name == "qtune-sqlite")
    clock = time.pthread_getcpuclockid(thread.ident or 0)
    rng = np.random.default_rng(2)

    async def interaction(i: int) -> None:
        uid = 1 + i % USERS
        s = await svc.recommend(uid, DEFAULT_GENRES[int(rng.integers(5))])
        await svc.record(i, s, 1, 2)
        assert (await svc.feedback(i, uid, bool(rng.random() < 0.7))).applied

    for i in range(USERS):  # every member has a table first
        await interaction(i)
    db0, loop0, wall0 = time.clock_gettime(clock), time.thread_time(), time.perf_counter()
    for i in range(USERS, USERS + events):
        await interaction(i)
    db, loop = time.clock_gettime(clock) - db0, time.thread_time() - loop0
    wall = time.perf_counter() - wall0
    await st.close()
    return db / events * 1e6, loop / events * 1e6, wall / events * 1e6


async def _create_schema(path: Path, sync: str) -> None:
    await (await SQLiteStorage.open(path, synchronous=sync)).close()


def plain_run(path: Path, sync: str, events: int) -> float:
    """The same work per event in a plain synchronous sqlite3 loop, one commit each.

    Interned ids (genres, the place) are looked up once, as the storage caches them.
    """
    asyncio.run(_create_schema(path, sync))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    learner = make_learner(LEARNER)
    rng = np.random.default_rng(1)
    names = GENRE_SEP.join(DEFAULT_GENRES)
    conn.execute("INSERT OR IGNORE INTO genre_sets(names) VALUES (?)", (names,))
    set_id = conn.execute("SELECT id FROM genre_sets WHERE names = ?", (names,)).fetchone()[0]
    ids = {}
    for value in ["p:1/2", *(f"g:{g}" for g in DEFAULT_GENRES)]:
        conn.execute("INSERT OR IGNORE INTO lookup(value) VALUES (?)", (value,))
        ids[value] = conn.execute("SELECT id FROM lookup WHERE value = ?", (value,)).fetchone()[0]
    genre_ids = [ids[f"g:{g}"] for g in DEFAULT_GENRES]
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(events):
        uid = 1 + i % USERS
        s = int(rng.integers(5))
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "SELECT state, epsilon, rewards, created_at FROM users WHERE user_id = ?", (uid,)
        ).fetchone()
        st = learner.initial_state(5) if row is None else decode_state(row[0], 5, row[1])
        a = learner.select(st, s, rng)
        now = time.time()
        conn.execute(
            "INSERT INTO recommendations (message_id, user_id, place, state, action, epsilon, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (i + 1, uid, ids["p:1/2"], genre_ids[s], genre_ids[a], st.epsilon, round(now)),
        )
        conn.execute(
            "SELECT user_id, state, action, rewarded_at FROM recommendations WHERE message_id = ?",
            (i + 1,),
        ).fetchone()
        r = 10.0 if rng.random() < 0.7 else -5.0
        learner.update(st, s, a, r, a)
        conn.execute(
            "INSERT OR REPLACE INTO users (user_id, genre_set, state, epsilon, current_genre, "
            "rewards, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (uid, set_id, encode_state(st), st.epsilon, DEFAULT_GENRES[a],
             (row[2] if row else 0) + 1, row[3] if row else round(now * 1000),
             round(now * 1000)),
        )  # fmt: skip
        conn.execute(
            "UPDATE recommendations SET reward = ?, rewarded_at = ? WHERE message_id = ?",
            (r, round(now), i + 1),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    CPU_US["plain"].append((time.process_time() - cpu0) / events * 1e6)
    conn.close()
    return events / elapsed


async def fill(path: Path, users: int, recs: int) -> float:
    """Bytes per user after ``users`` × ``recs`` rewarded recommendations.

    Rows are written through the storage's public API (so its real encoding is
    measured) but without the per-reaction round trips, to keep this part quick.
    """
    st = await SQLiteStorage.open(path, synchronous="NORMAL")
    learner = make_learner(LEARNER)
    rng = np.random.default_rng(2)
    base = 1_200_000_000_000_000_000  # Discord-sized snowflakes (8-byte integers)
    guild, channel = 900_000_000_000_000_000, 910_000_000_000_000_000
    now = time.time()

    async def one(uid: int) -> None:
        rec = UserRecord.fresh(uid, DEFAULT_GENRES, learner.initial_state(5))
        rows = []
        s = uid % 5
        for k in range(recs):
            a = learner.select(rec.learner, s, rng)
            r = 10.0 if rng.random() < 0.7 else -5.0
            rows.append(
                Recommendation(
                    base + k * users + uid,  # increasing over time, like snowflakes
                    uid, guild, channel, DEFAULT_GENRES[s], DEFAULT_GENRES[a],
                    rec.learner.epsilon, now, r, now,
                )
            )  # fmt: skip
            learner.update(rec.learner, s, a, r, a)
            rec.rewards += 1
            s = a
        rec.current_genre = DEFAULT_GENRES[s]
        # The last row goes in unrewarded; rewarding it stores the whole table at once.
        last = replace(rows[-1], reward=None, rewarded_at=None)
        await asyncio.gather(*(st.add_recommendation(row) for row in [*rows[:-1], last]))
        await st.apply_reward(last.message_id, uid, lambda _r, _u: (rows[-1].reward, rec, None))

    for start in range(1, users + 1, 500):
        await asyncio.gather(*(one(u) for u in range(start, min(start + 500, users + 1))))
    await st.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    conn.close()
    return (pages - free) * size / users


def ms(lat: np.ndarray, q: float) -> float:
    return float(np.percentile(lat, q) * 1000)


def report(sync: str, events: int, rounds: int, folder: Path) -> None:
    """Alternate service and plain runs; the median of each damps a noisy machine."""
    rates, plains, lats = [], [], []
    for v in CPU_US.values():
        v.clear()
    for i in range(rounds):
        rate, lat = asyncio.run(service_run(folder / f"svc-{sync}-{i}.db", sync, events))
        rates.append(rate)
        lats.append(lat)
        plains.append(plain_run(folder / f"plain-{sync}-{i}.db", sync, events))
    rate, plain = float(np.median(rates)), float(np.median(plains))
    lat = lats[int(np.argsort(rates)[len(rates) // 2])]
    # Paced: the same users at about half the saturated rate, as people react.
    paced_rate, paced = asyncio.run(
        service_run(folder / f"paced-{sync}.db", sync, events, think_s=2 * USERS / rate)
    )
    print(f"synchronous={sync}: {events:,} events × {rounds} rounds, {USERS} concurrent users")
    print(f"  service, saturated:  {rate:8,.0f} durable feedback events/s (runs: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})")  # fmt: skip
    print(f"  plain sqlite3 loop:  {plain:8,.0f} events/s (runs: "
          f"{', '.join(f'{r:,.0f}' for r in plains)})")  # fmt: skip
    print(f"  ratio service / plain: {rate / plain:.2f}x")
    cpu_s, cpu_p = (float(np.median(CPU_US[k])) for k in ("service", "plain"))
    print(f"  CPU per event (both threads; robust to a busy machine): service "
          f"{cpu_s:.0f} µs, plain {cpu_p:.0f} µs")  # fmt: skip
    print(f"  feedback latency, saturated (closed loop, queueing): "
          f"p50 {ms(lat, 50):.1f} ms, p99 {ms(lat, 99):.1f} ms")  # fmt: skip
    print(f"  feedback latency at {paced_rate:,.0f} events/s (paced users): "
          f"p50 {ms(paced, 50):.1f} ms, p99 {ms(paced, 99):.1f} ms")  # fmt: skip
    db, loop, wall = asyncio.run(one_at_a_time(folder / f"one-{sync}.db", sync, events))
    print(f"  one interaction at a time: {db:.0f} µs CPU on the SQLite thread, {loop:.0f} µs "
          f"on the event loop, {wall:.0f} µs wall, per interaction")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", default="both", choices=["FULL", "NORMAL", "both"])
    parser.add_argument("--events", type=int, default=3000, help="per run (FULL: a third)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-users", type=int, default=10_000)
    parser.add_argument("--db", help="compare with PostgreSQL: a URL, or 'auto'")
    parser.add_argument("--processes", default="1,2", help="bot processes, e.g. 1,2")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')} · {os.cpu_count()} CPUs · SQLite {sqlite3.sqlite_version}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.db:
        from backend_compare import compare, print_table

        procs = tuple(int(p) for p in args.processes.split(","))
        print_table(compare(args.db, procs, args.events, args.rounds), args.events, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for sync in ("NORMAL", "FULL") if args.sync == "both" else (args.sync,):
            events = args.events if sync == "NORMAL" else max(USERS, args.events // 3)
            report(sync, events, args.rounds, folder)
        if args.size_users:
            t0 = time.perf_counter()
            per_user = asyncio.run(fill(folder / "size.db", args.size_users, 20))
            took = time.perf_counter() - t0
            print(
                f"size: {per_user:,.0f} bytes per user ({args.size_users:,} users × 20 "
                f"rewarded recommendations; filled in {took:.1f} s)"
            )


if __name__ == "__main__":
    main()
