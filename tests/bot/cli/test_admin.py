"""``python -m bot backup FILE``: a consistent copy of a live SQLite database."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.cli.admin import backup_sqlite
from bot.config import ConfigError
from bot.engine.learners import make_learner
from bot.errors import InvalidRequest
from bot.service import QTuneService
from storage.sqlite import SQLiteStorage

REPO = Path(__file__).resolve().parents[3]


def check_copy(path: Path) -> tuple[int, int]:
    """The invariant of every committed reward, checked in a copy: each user's reward
    count equals their rewarded recommendations (one transaction writes both)."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        users = dict(conn.execute("SELECT user_id, rewards FROM users"))
        rewarded = dict(
            conn.execute(
                "SELECT user_id, count(*) FROM recommendations "
                "WHERE rewarded_at IS NOT NULL GROUP BY user_id"
            )
        )
        for user, count in rewarded.items():
            assert users.get(user) == count, (user, users.get(user), count)
        return sum(users.values()), len(users)
    finally:
        conn.close()


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".*partial*"))


async def test_backup_while_the_bot_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite3"
    storage = await SQLiteStorage.open(db)
    service = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(1))
    stop = asyncio.Event()
    progressed = asyncio.Event()
    written = 0

    async def writer(user: int) -> None:
        nonlocal written
        mid = user * 1_000_000
        while not stop.is_set():
            mid += 1
            s = await service.recommend(user, "Rock")
            await service.record(mid, s, 1, 2)
            assert (await service.feedback(mid, user, liked=mid % 3 != 0)).applied
            written += 1
            progressed.set()

    tasks = [asyncio.create_task(writer(u)) for u in range(1, 5)]
    try:
        totals = []
        for i in range(6):
            while written < 40 * (i + 1):  # let writes land between the copies
                progressed.clear()
                await progressed.wait()
            copy = tmp_path / f"copy{i}.sqlite3"
            line = await asyncio.to_thread(backup_sqlite, db, copy)
            assert line.startswith(f"Backed up {db} to {copy}: schema v")
            totals.append(check_copy(copy))
            assert not leftovers(tmp_path)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await storage.close()
    rewards = [t for t, _ in totals]
    assert rewards == sorted(rewards)
    assert rewards[-1] > rewards[0] > 0  # the copies saw the writes go on
    # A copy is a working database for the bot's own storage.
    again = await SQLiteStorage.open(tmp_path / "copy5.sqlite3")
    try:
        assert (await again.get_user(1)) is not None
    finally:
        await again.close()


def test_backup_refusals(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    with pytest.raises(ConfigError, match="no database at"):
        backup_sqlite(db, tmp_path / "b.sqlite3")
    assert not db.exists()  # never created by a backup
    sqlite3.connect(db).executescript("CREATE TABLE users(x); CREATE TABLE recommendations(y);")
    (tmp_path / "b.sqlite3").write_text("keep me")
    with pytest.raises(InvalidRequest, match="already exists"):
        backup_sqlite(db, tmp_path / "b.sqlite3")
    assert (tmp_path / "b.sqlite3").read_text() == "keep me"
    with pytest.raises(InvalidRequest, match="no folder"):
        backup_sqlite(db, tmp_path / "nowhere" / "b.sqlite3")
    with pytest.raises(InvalidRequest, match="must not be the database itself"):
        backup_sqlite(db, db, force=True)
    assert "0 user(s)" in backup_sqlite(db, tmp_path / "b.sqlite3", force=True)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_cli_lines_and_exit_codes(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env["QTUNE_DB"] = str(tmp_path / "none.sqlite3")
    proc = run_cli("backup", str(tmp_path / "b.sqlite3"), env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("(QTUNE_DB)")
    assert "Traceback" not in proc.stderr
    env["QTUNE_DB"] = "postgresql://localhost/qtune"
    proc = run_cli("backup", str(tmp_path / "b.sqlite3"), env=env)
    assert proc.returncode == 2
    assert "pg_dump" in proc.stderr
