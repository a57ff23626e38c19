"""QTuneBot's wiring without a network: intents, endpoints, extension loading, command
sync by hash, start-up reconciliation and the loop-lag monitor. (The real gateway and
REST round trips are tested in tests/e2e/.)"""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import discord
import pytest
import yarl

import bot.app.bot as app
from bot.config import Settings, open_service
from cogs.common import THUMBS_DOWN, THUMBS_UP
from tests.cogs.conftest import FakeService, FeedbackResult

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def restore_endpoints():
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


class SyncRecorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list = []
        self.fail = fail

    async def __call__(self, *, guild=None):
        self.calls.append(guild.id if guild is not None else None)
        if self.fail:
            raise discord.HTTPException(SimpleNamespace(status=400, reason="Bad"), "nope")
        return ["cmd"]


async def started(settings: Settings, service: FakeService, monkeypatch, fail_sync=False):
    bot = app.build_bot(settings, service=service)
    recorder = SyncRecorder(fail_sync)
    monkeypatch.setattr(bot.tree, "sync", recorder)
    await bot.setup_hook()
    return bot, recorder


async def test_intents_are_minimal():
    bot = app.build_bot(Settings(), service=FakeService())
    intents = bot.intents
    assert intents.guilds
    assert intents.guild_reactions
    assert not intents.message_content
    assert not intents.members
    assert not intents.presences
    assert intents.value == discord.Intents(guilds=True, guild_reactions=True).value
    await bot.close()


async def test_endpoints_come_from_settings():
    settings = Settings(api_base="http://127.0.0.1:9/api/v10", gateway_url="ws://127.0.0.1:9/gw")
    bot = app.build_bot(settings, service=FakeService())
    assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
    route = discord.http.Route("GET", "/users/@me")
    assert route.url == "http://127.0.0.1:9/api/v10/users/@me"
    assert yarl.URL("ws://127.0.0.1:9/gw") == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    await bot.close()


async def test_setup_hook_loads_every_cog_and_syncs_once(monkeypatch):
    service = FakeService()
    settings = Settings(dev_guild=555)
    bot, recorder = await started(settings, service, monkeypatch)
    names = sorted(c.name for c in bot.tree.get_commands(guild=discord.Object(555)))
    assert names == ["nowplaying", "qtable", "reset", "simulate"]
    assert recorder.calls == [555]  # to the dev guild
    assert bot.commands_synced is True
    assert app.SYNC_HASH_KEY in service.meta
    await bot.close()

    # Same definitions, same database: no second sync.
    bot2, recorder2 = await started(settings, service, monkeypatch)
    assert recorder2.calls == []
    assert bot2.commands_synced is False
    await bot2.close()

    # A different target is a change: sync globally.
    bot3, recorder3 = await started(Settings(), service, monkeypatch)
    assert recorder3.calls == [None]
    await bot3.close()


async def test_failed_sync_is_retried_next_start(monkeypatch, caplog):
    service = FakeService()
    bot, recorder = await started(Settings(), service, monkeypatch, fail_sync=True)
    assert recorder.calls == [None]
    assert app.SYNC_HASH_KEY not in service.meta
    assert any("syncing app commands" in r.getMessage() for r in caplog.records)
    await bot.close()
    bot2, recorder2 = await started(Settings(), service, monkeypatch)
    assert recorder2.calls == [None]
    await bot2.close()


async def test_a_failing_cog_does_not_stop_the_others(monkeypatch, caplog):
    monkeypatch.setattr(app, "COG_EXTENSIONS", ("cogs.recommend", "cogs.no_such_cog", "cogs.table"))
    service = FakeService()
    bot, recorder = await started(Settings(), service, monkeypatch)
    names = sorted(c.name for c in bot.tree.get_commands())
    assert names == ["nowplaying", "qtable"]
    assert bot.failed_extensions == ["cogs.no_such_cog"]
    failure = [r for r in caplog.records if "cogs.no_such_cog" in r.getMessage()]
    assert failure
    assert failure[0].exc_info is not None
    # Syncing now would delete the broken cog's commands from Discord: skipped.
    assert recorder.calls == []
    await bot.close()


class FakeHTTP:
    def __init__(self, reactions: dict[tuple[int, str], list[int]], missing=()) -> None:
        self.reactions = reactions
        self.missing = set(missing)
        self.calls: list = []

    async def get_reaction_users(self, channel_id, message_id, emoji, limit, after=None):
        self.calls.append((channel_id, message_id, emoji, after))
        if message_id in self.missing:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")
        users = sorted(self.reactions.get((message_id, emoji), []))
        if after is not None:
            users = [u for u in users if u > after]
        return [{"id": str(u)} for u in users[:limit]]


def rec(message_id: int, user_id: int, channel_id: int | None = 8):
    return SimpleNamespace(message_id=message_id, user_id=user_id, channel_id=channel_id)


async def test_reconcile_applies_the_requesters_reaction_only():
    service = FakeService()
    service.pending_recs = [
        rec(1, 42),  # 👍 by the requester (and the bot)
        rec(2, 42),  # 👎 by the requester
        rec(3, 42),  # only someone else reacted
        rec(4, 42),  # the message was deleted
        rec(5, 42, channel_id=None),  # console recommendation: nothing to read
    ]
    http = FakeHTTP(
        {
            (1, THUMBS_UP): [999, 42],
            (1, THUMBS_DOWN): [999],
            (2, THUMBS_UP): [999],
            (2, THUMBS_DOWN): [999, 42],
            (3, THUMBS_UP): [999, 7],
        },
        missing={4},
    )
    bot = app.build_bot(Settings(), service=service)
    bot.http.get_reaction_users = http.get_reaction_users
    applied = await bot.reconcile_pending()
    feedback = [e for e in service.events if e[0] == "feedback"]
    assert feedback == [("feedback", 1, 42, True), ("feedback", 2, 42, False)]
    assert applied == 2
    assert bot.reconciled.is_set()
    assert not any(c[1] == 5 for c in http.calls)
    assert ("pending", app.RECONCILE_MAX_AGE) in service.events
    await bot.close()


async def test_reconcile_paginates_reaction_users():
    service = FakeService()
    service.pending_recs = [rec(6, 500)]
    http = FakeHTTP({(6, THUMBS_UP): [*range(100, 200), 500]})
    bot = app.build_bot(Settings(), service=service)
    bot.http.get_reaction_users = http.get_reaction_users
    assert await bot.reconcile_pending() == 1
    assert [c[3] for c in http.calls] == [None, 199]
    assert ("feedback", 6, 500, True) in service.events
    await bot.close()


async def test_reconcile_counts_only_applied_feedback():
    service = FakeService()
    service.feedback_result = FeedbackResult(False, "already_rewarded")
    service.pending_recs = [rec(1, 42)]
    bot = app.build_bot(Settings(), service=service)
    bot.http.get_reaction_users = FakeHTTP({(1, THUMBS_UP): [42]}).get_reaction_users
    assert await bot.reconcile_pending() == 0
    await bot.close()


async def test_close_waits_for_in_flight_work_then_closes_storage(monkeypatch):
    closed = []

    class Storage:
        async def close(self):
            closed.append(bot._busy)

    service = FakeService()
    bot = app.build_bot(Settings(), service=service)
    bot.storage = Storage()
    finished = []

    async def work():
        async with bot.activity():
            await asyncio.sleep(0.05)
            finished.append(True)

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await bot.close()
    assert finished == [True]
    assert closed == [0]  # closed once, after the work
    assert ("cancel_simulations",) in service.events  # long simulations stop, not stall
    await task
    await bot.close()  # idempotent
    assert closed == [0]


async def test_loop_lag_monitor_sees_a_blocked_loop():
    monitor = app.LoopLagMonitor(0.01, log_every=3600)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.03)
    time.sleep(0.2)  # noqa: ASYNC251 - block the loop on purpose
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert monitor.samples >= 2
    assert monitor.max_lag >= 0.1


async def test_token_filter_redacts_log_records(caplog):
    token = "MTIz.abcdef.ghijk"
    filt = app._TokenFilter(token)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token is %s", (token,), None)
    assert filt.filter(record)
    assert token not in record.getMessage()
    assert "[redacted]" in record.getMessage()


async def test_run_closes_gracefully_on_sigterm(tmp_path):
    """``run`` against the loopback fake: SIGTERM → storage closed, exit code 0."""
    import os
    import signal
    import sqlite3

    from tests.fakediscord import FakeDiscord

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, app._logging_ready)
    db = tmp_path / "q.db"
    try:
        async with FakeDiscord() as fake:
            settings = Settings(
                token=fake.token,
                db_path=db,
                api_base=fake.api_base,
                gateway_url=fake.gateway_url,
                dev_guild=fake.guild_id,
                guild_ready_timeout=0.05,
            )
            runner = asyncio.create_task(app.run(settings))
            await fake.wait_ready()
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(runner, 20) == 0
            await fake.wait_disconnected()
    finally:
        root.handlers[:], root.level, app._logging_ready = saved
    # Closed cleanly: the last connection's close checkpoints and removes the WAL file.
    assert db.exists()
    assert not (tmp_path / "q.db-wal").exists()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    service, storage = await open_service(Settings(db_path=db))
    try:
        assert await service.get_meta(app.SYNC_HASH_KEY)  # the sync was recorded
    finally:
        await storage.close()
