"""Reactions given while the database is busy or away are applied once it is back.

The real bot (in-process) against the fake Discord. SQLite: another process holds the
file with ``BEGIN IMMEDIATE`` for 10 s (a backup does this). PostgreSQL: the server is
stopped for 5 s under a stream of reactions. Each runs twice: with the default retry
budget (the reaction is retried until the database answers) and with a 1 s budget (the
reaction is deferred and the periodic reconciliation pass applies it).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from cogs.common import DATABASE_DOWN
from tests.fakediscord import FakeDiscord
from tests.harness import THUMBS_UP, running_bot
from tests.pg_server import PgServer

pytestmark = pytest.mark.timeout(90)

USERS = [350_000_000_000_000_000 + i for i in range(12)]
LATE_USER = 350_000_000_000_001_000
BUDGETS = pytest.mark.parametrize("budget", ["30", "1"], ids=["retried", "deferred"])
LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def fault_env(bot_env: dict[str, str], budget: str, **extra: str) -> dict[str, str]:
    return {
        **bot_env,
        "QTUNE_COOLDOWN": "0",
        "QTUNE_LOG_LEVEL": "INFO",
        "QTUNE_FEEDBACK_RETRY": budget,
        "QTUNE_RECONCILE_INTERVAL": "0.5",
        **extra,
    }


async def all_rewarded_once(qb, users: list[int]) -> None:
    async def check() -> list[int] | None:
        counts = [await qb.rewards(u) for u in users]
        return counts if all(c == 1 for c in counts) else None

    await qb.eventually(check, within=40, what="every reaction applied")
    await asyncio.sleep(1.0)  # a retry or a pass that would apply one twice has run by now
    assert [await qb.rewards(u) for u in users] == [1] * len(users)


@BUDGETS
async def test_sqlite_locked_by_another_process_for_10_s(
    fake: FakeDiscord, bot_env: dict[str, str], budget: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qtune")
    env = fault_env(bot_env, budget)
    async with running_bot(fake, env) as qb:
        shown = await asyncio.gather(*(qb.nowplaying(u) for u in USERS))
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, env["QTUNE_DB"], "10", stdout=asyncio.subprocess.PIPE
        )
        try:
            assert locker.stdout is not None
            assert (await locker.stdout.readline()).strip() == b"locked"
            delivered = await asyncio.gather(
                *(
                    fake.user_reacts(msg.id, u, THUMBS_UP)
                    for (_, msg), u in zip(shown, USERS, strict=True)
                )
            )
            assert all(delivered)
            # A command in the window is answered in plain words, not with the raw error.
            inter = await fake.send_command("nowplaying", {"genre": "jazz"}, user_id=LATE_USER)
            await fake.interaction_response(inter.id, within=20)
            reply = inter.callback_data
            assert reply.get("content") == DATABASE_DOWN, reply
            assert reply.get("flags", 0) & 64  # ephemeral
            assert await asyncio.wait_for(locker.wait(), 20) == 0
        finally:
            if locker.returncode is None:
                locker.kill()
                await locker.wait()
        await all_rewarded_once(qb, USERS)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("locked" in r.getMessage() for r in warnings), "the cause is logged"


@BUDGETS
async def test_postgresql_stopped_for_5_s_under_load(
    fake: FakeDiscord,
    bot_env: dict[str, str],
    pg_server: PgServer,
    pg_url: str,
    budget: str,
) -> None:
    env = fault_env(bot_env, budget, QTUNE_DB=pg_url)
    async with running_bot(fake, env) as qb:
        shown = await asyncio.gather(*(qb.nowplaying(u) for u in USERS))
        pairs = [(msg, u) for (_, msg), u in zip(shown, USERS, strict=True)]

        async def react(batch: list) -> None:
            assert all(
                await asyncio.gather(*(fake.user_reacts(m.id, u, THUMBS_UP) for m, u in batch))
            )

        await react(pairs[:3])  # before
        await asyncio.to_thread(pg_server.pg_ctl_stop)
        try:
            for k in range(3, 9):  # during: one every ~0.8 s
                await react(pairs[k : k + 1])
                await asyncio.sleep(0.8)
        finally:
            await asyncio.to_thread(pg_server.pg_ctl_start)
        await react(pairs[9:])  # after
        await all_rewarded_once(qb, USERS)
