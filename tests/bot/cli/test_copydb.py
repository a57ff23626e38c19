"""``python -m bot copy-db``: a SQLite → PostgreSQL → SQLite round trip keeps every row,
and a DEST that holds data is refused with one line and exit 2 unless ``--force``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.service import QTuneService
from storage.factory import open_storage

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


def copy_db(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "copy-db", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )


async def fill(target: str) -> None:
    """Real traffic through the service: rewarded and pending recommendations, a
    pretrained table, a user with another genre list, the console's negative ids."""
    storage = await open_storage(target)
    service = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(1))
    try:
        for user in range(1, 41):
            for k in range(3):
                s = await service.recommend(user, ("Pop", "Rock", "Jazz")[k])
                mid = user * 100 + k
                await service.record(mid, s, 10 + user, 20 + user)
                if k < 2:
                    assert (await service.feedback(mid, user, k == 0)).applied
        await service.simulate(7, "pop_lover", 500, seed=2)
        s = await service.recommend(99, "Jazz")
        await service.record(-123456789, s, None, None)
        await service.set_meta("app_commands_hash", "abc")
    finally:
        await storage.close()
    other = await open_storage(target, genres=("Pop", "Metal"))
    try:
        await QTuneService(other, genres=("Pop", "Metal")).recommend(500, "Metal")
    finally:
        await other.close()


async def everything(target: str) -> tuple:
    storage = await open_storage(target)
    try:
        users = await storage.export_users(None, 10_000)
        recs = await storage.export_recommendations(None, 10_000)
        meta = await storage.export_meta()
    finally:
        await storage.close()
    flat = [
        (
            u.user_id,
            u.genres,
            u.learner.q.tobytes(),
            u.learner.visits.tolist(),
            u.learner.reward_sum.tobytes(),
            u.learner.epsilon,
            u.current_genre,
            u.rewards,
            round(u.created_at, 3),
            round(u.updated_at, 3),
        )
        for u in users
    ]
    return flat, recs, meta


async def test_round_trip_sqlite_postgresql_sqlite(tmp_path: Path, pg_url: str) -> None:
    first = str(tmp_path / "first.sqlite3")
    back = str(tmp_path / "back.sqlite3")
    await fill(first)
    there = await asyncio.to_thread(copy_db, tmp_path, first, pg_url)
    assert there.returncode == 0, there.stderr
    assert "copied 42 user(s) and 121 recommendation(s)" in there.stdout
    assert "counts match" in there.stdout
    home = await asyncio.to_thread(copy_db, tmp_path, pg_url, back)
    assert home.returncode == 0, home.stderr
    original, on_pg, returned = await asyncio.gather(
        everything(first), everything(pg_url), everything(back)
    )
    assert len(original[0]) == 42
    assert len(original[1]) == 121
    assert on_pg == original
    assert returned == original
    assert original[2]["app_commands_hash"] == "abc"


async def test_a_dest_with_data_is_refused_unless_forced(tmp_path: Path, pg_url: str) -> None:
    source = str(tmp_path / "s.sqlite3")
    await fill(source)
    assert (await asyncio.to_thread(copy_db, tmp_path, source, pg_url)).returncode == 0
    again = await asyncio.to_thread(copy_db, tmp_path, source, pg_url)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert "already holds 42 user(s) and 121 recommendation(s); pass --force" in again.stderr
    # A changed source, forced over the old copy: DEST now equals the source exactly.
    storage = await open_storage(source)
    try:
        assert await storage.delete_user(3)
    finally:
        await storage.close()
    forced = await asyncio.to_thread(copy_db, tmp_path, source, pg_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "copied 41 user(s) and 118 recommendation(s)" in forced.stdout
    assert await everything(pg_url) == await everything(source)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("missing.sqlite3", "out.sqlite3"), "SOURCE: no database at missing.sqlite3"),
        (("s.sqlite3", "s.sqlite3"), "SOURCE and DEST are the same database"),
        (("s.sqlite3", "mysql://u:pw@h/db"), "DEST: 'mysql://u:***@h/db' is neither"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, args: tuple, words: str) -> None:
    (tmp_path / "s.sqlite3").write_bytes(b"")
    proc = copy_db(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert words in proc.stderr
    assert not (tmp_path / "out.sqlite3").exists()
