"""kill -9 in the middle of a stream of rewards: every reported reward survives."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from storage.sqlite import SQLiteStorage

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from bot.engine.learners import make_learner
    from bot.service import QTuneService
    from storage.sqlite import SQLiteStorage

    async def main(path, sync):
        st = await SQLiteStorage.open(path, synchronous=sync)
        svc = QTuneService(st, learner=make_learner("seed"), rng=np.random.default_rng(1))
        mid = 1
        while True:
            batch = []
            for _ in range(8):  # a few at once, so group commit is exercised too
                s = await svc.recommend(7, "rock")
                await svc.record(mid, s, 1, 2)
                batch.append(mid)
                mid += 1
            results = await asyncio.gather(*(svc.feedback(m, 7, True) for m in batch))
            for m, r in zip(batch, results):
                assert r.applied
                print(m, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def run_and_kill(path: Path, sync: str, wanted: int) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), sync],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    printed: list[int] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(printed) < wanted and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        printed.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate()
    printed += [int(x) for x in rest.split()]  # printed before the kill landed
    assert proc.returncode == -signal.SIGKILL, err
    assert len(printed) >= wanted, err
    return printed


def test_sigkill_keeps_every_reported_reward(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    printed = run_and_kill(path, "NORMAL", wanted=300)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT message_id FROM recommendations WHERE rewarded_at IS NOT NULL"
        ).fetchall()
        rewards = conn.execute("SELECT rewards FROM users WHERE user_id = 7").fetchone()[0]
    finally:
        conn.close()
    rewarded = {r[0] for r in rows}
    assert set(printed) <= rewarded
    assert rewards == len(rewarded)  # the counter and the rows were committed together
    # The storage itself reopens the crashed file (its read-only checks included).
    assert asyncio.run(reopened_rewards(path)) == rewards


async def reopened_rewards(path: Path) -> int:
    st = await SQLiteStorage.open(path)
    try:
        user = await st.get_user(7)
    finally:
        await st.close()
    assert user is not None
    return user.rewards
