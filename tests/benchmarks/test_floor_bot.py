"""The load benchmark's floors (``benchmarks/floor_bot.py``) do what their CPU figures claim.

The bare floor must store nothing, and the durable floor (``--durable``) must really commit
each suggestion and the requester's reward, with the TD step on that member's own table:
otherwise "what durable storage costs" would be the cost of something else. Both run as a
child process, the real discord.py client against the fake Discord.
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import sys
from pathlib import Path

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import (
    GENRES,
    THUMBS_DOWN,
    THUMBS_UP,
    BotProcess,
    bot_environment,
    nowplaying,
    suggested,
)

pytestmark = pytest.mark.timeout(60)

FLOOR_BOT = Path(__file__).resolve().parents[2] / "benchmarks" / "floor_bot.py"
DANA, ERIN = 440_000_000_000_000_001, 440_000_000_000_000_002


def rows(db: Path) -> list[tuple[int, int, int, float | None]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        query = "SELECT user_id, genre, suggestion, reward FROM recommendations"
        return con.execute(query).fetchall()


def table(db: Path, user: int) -> list[float]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        (blob,) = con.execute("SELECT q FROM tables WHERE user_id = ?", (user,)).fetchone()
    return list(struct.unpack("25d", blob))


def rewarded(db: Path) -> bool:
    return db.exists() and any(r[3] is not None for r in rows(db))


async def until_rewarded(db: Path) -> None:
    for _ in range(200):
        if await asyncio.to_thread(rewarded, db):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no reward was committed within 10 s")


async def test_the_durable_floor_commits_each_suggestion_and_the_requesters_reward(
    tmp_path: Path,
) -> None:
    db = tmp_path / "floor.sqlite3"
    async with FakeDiscord() as fake:
        command = [sys.executable, str(FLOOR_BOT), "--durable"]
        bot = BotProcess(bot_environment(fake, db), tmp_path, command=command)
        try:
            await bot.start_and_wait_ready(fake, 20)
            _, msg = await nowplaying(fake, DANA, "Jazz")
            action = GENRES.index(suggested(msg.content))
            assert await fake.user_reacts(msg.id, ERIN, THUMBS_DOWN)  # not the requester
            assert await fake.user_reacts(msg.id, DANA, THUMBS_UP)
            await until_rewarded(db)  # committed while the bot runs, as a reader sees it
            assert await fake.user_reacts(msg.id, DANA, THUMBS_DOWN)  # not the first
        finally:
            assert await bot.stop() == 0, bot.describe()
    assert rows(db) == [(DANA, GENRES.index("Jazz"), action, 10.0)]
    q = table(db, DANA)
    # One TD step from a zero table: α·r = 0.1 × 10 in (Jazz, suggestion), nothing else.
    assert q[GENRES.index("Jazz") * 5 + action] == pytest.approx(1.0)
    assert sum(abs(v) for v in q) == pytest.approx(1.0)


async def test_the_bare_floor_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "floor.sqlite3"
    async with FakeDiscord() as fake:
        command = [sys.executable, str(FLOOR_BOT)]
        bot = BotProcess(bot_environment(fake, db), tmp_path, command=command)
        try:
            await bot.start_and_wait_ready(fake, 20)
            _, msg = await nowplaying(fake, DANA, "Rock")
            assert await fake.user_reacts(msg.id, DANA, THUMBS_UP)
        finally:
            assert await bot.stop() == 0, bot.describe()
    assert not db.exists()
