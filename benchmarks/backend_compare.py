"""SQLite and PostgreSQL feedback side by side, with 1 and N bot processes.

Used by ``benchmarks/feedback_speed.py --db URL`` (or ``--db auto``: a throwaway,
*durable* PostgreSQL server, fsync on). Each measured run is ``processes`` worker
processes started together; each runs its share of 100 concurrent simulated users doing
recommend → record → 👍/👎 through :class:`QTuneService` and times every feedback call
(it returns after the commit, so each counted event is durable). Rounds alternate the
backends, and the medians are printed side by side. CPU per event counts the workers
(all threads) and, for the throwaway server, the PostgreSQL processes too.

Worker mode (internal): ``backend_compare.py --worker TARGET FIRST COUNT EVENTS START``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
USERS = 100
TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the worker
async def _work(target: str, first: int, count: int, per_user: int, start_at: float) -> dict:
    from bot.engine.learners import make_learner
    from bot.engine.qlearning import DEFAULT_GENRES
    from bot.service import QTuneService
    from storage.factory import open_storage

    storage = await open_storage(target)
    svc = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(first))
    latencies: list[float] = []

    async def user(uid: int) -> None:
        rng = np.random.default_rng(uid)
        for k in range(per_user):
            s = await svc.recommend(uid, DEFAULT_GENRES[int(rng.integers(5))])
            mid = uid * 1_000_000 + k
            await svc.record(mid, s, 1, 2)
            t0 = time.perf_counter()
            result = await svc.feedback(mid, uid, bool(rng.random() < 0.7))
            latencies.append(time.perf_counter() - t0)
            assert result.applied

    await asyncio.sleep(max(0.0, start_at - time.time()))
    t0, cpu0 = time.time(), time.process_time()
    await asyncio.gather(*(user(u) for u in range(first, first + count)))
    t1, cpu1 = time.time(), time.process_time()
    await storage.close()
    return {"start": t0, "end": t1, "cpu": cpu1 - cpu0, "lat": latencies}


# ------------------------------------------------------------------ the parent
def _server_cpu(data: Path | None) -> float:
    """CPU seconds used so far by the throwaway server's processes (0 if unknown)."""
    if data is None:
        return 0.0
    try:
        root = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == root or ppid == root:
            # utime, stime, and the waited-for children's cutime, cstime
            total += sum(int(x) for x in fields[11:15]) / TICKS
    return total


def run_once(target: str, processes: int, events: int, server_data: Path | None) -> dict:
    """One measured run: ``processes`` workers sharing USERS users and ``events`` events."""
    per_user = max(1, events // USERS)
    share = USERS // processes
    start_at = time.time() + 1.5  # every worker imported and connected by then
    cpu_server0 = _server_cpu(server_data)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                target,
                str(1 + i * share),
                str(share),
                str(per_user),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(processes)
    ]
    outs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a benchmark worker failed")
    cpu_server = _server_cpu(server_data) - cpu_server0
    done = per_user * share * processes
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    lat = np.array([x for o in outs for x in o["lat"]])
    return {
        "rate": done / wall,
        "p50": float(np.percentile(lat, 50) * 1000),
        "p99": float(np.percentile(lat, 99) * 1000),
        "cpu_client": sum(o["cpu"] for o in outs) / done * 1e6,
        "cpu_server": cpu_server / done * 1e6,
    }


def _fresh_pg_db(base_url: str, server: Any, n: int) -> str:
    if server is not None:
        return server.create_database(f"bench{n}", unix=True)
    return base_url  # an operator's database: the caller must pass an empty one each time


def compare(db: str, processes: tuple[int, ...], events: int, rounds: int) -> list[dict]:
    """Alternate SQLite (synchronous=FULL) and PostgreSQL runs; print the table."""
    server = None
    base = db
    if db == "auto":
        sys.path.insert(0, str(ROOT))
        from tests.pg_server import PgServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL server binaries; pass --db postgresql://…")
        server = PgServer(bindir).start(extra=())  # durable: fsync and synchronous_commit on
        base = server.url()
    rows: list[dict] = []
    n = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for procs in processes:
                results: dict[str, list[dict]] = {"SQLite": [], "PostgreSQL": []}
                for r in range(rounds):
                    n += 1
                    path = str(Path(tmp) / f"bench-{procs}-{r}.sqlite3")
                    results["SQLite"].append(run_once(path, procs, events, None))
                    url = _fresh_pg_db(base, server, n)
                    data = server.data if server is not None else None
                    results["PostgreSQL"].append(run_once(url, procs, events, data))
                for backend, runs in results.items():
                    row = {"backend": backend, "processes": procs}
                    for key in runs[0]:
                        row[key] = float(np.median([x[key] for x in runs]))
                    row["runs"] = [round(x["rate"]) for x in runs]
                    rows.append(row)
    finally:
        if server is not None:
            server.stop()
    return rows


def print_table(rows: list[dict], events: int, rounds: int) -> None:
    print(
        f"durable feedback, {USERS} concurrent users, {events:,} events per run, "
        f"median of {rounds} rounds (SQLite synchronous=FULL; PostgreSQL fsync on)"
    )
    print(
        "| backend | processes | events/s | p50 ms | p99 ms | CPU µs/event (bot + server) | runs |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['processes']} | {r['rate']:,.0f} | {r['p50']:.1f} "
            f"| {r['p99']:.1f} | {r['cpu_client']:.0f} + {r['cpu_server']:.0f} "
            f"| {', '.join(f'{x:,}' for x in r['runs'])} |"
        )
    by = {(r["backend"], r["processes"]): r["rate"] for r in rows}
    for procs in sorted({r["processes"] for r in rows}):
        ratio = by[("PostgreSQL", procs)] / by[("SQLite", procs)]
        verdict = "met" if ratio >= 0.5 else "NOT met"
        print(f"{procs} process(es): PostgreSQL / SQLite = {ratio:.2f}x (target ≥ 0.5x: {verdict})")


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    target, first, count, per_user, start_at = sys.argv[2:7]
    out = asyncio.run(_work(target, int(first), int(count), int(per_user), float(start_at)))
    sys.stdout.write(json.dumps(out))
