"""QTuneBot's wiring without a network: intents, endpoints, extensions, shutdown.

The real gateway and REST round trips are tested in tests/e2e/.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
import yarl

from bot.app.bot import QTuneBot
from bot.app.sync import SYNC_HASH_KEY
from bot.config import Settings, open_service
from bot.errors import Cancelled
from bot.service import QTuneService

pytestmark = pytest.mark.timeout(30)


class SyncRecorder:
    """Stands in for ``tree.sync`` (Discord's PUT of the command list)."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []

    async def __call__(self, *, guild: discord.abc.Snowflake | None = None) -> list[str]:
        self.calls.append(guild.id if guild is not None else None)
        return ["cmd"]


async def started(
    settings: Settings, service: QTuneService, extensions: tuple[str, ...] | None = None
) -> tuple[QTuneBot, SyncRecorder]:
    bot = QTuneBot(settings, service=service)
    if extensions is not None:
        bot.extensions_to_load = extensions
    recorder = SyncRecorder()
    bot.tree.sync = recorder  # type: ignore[method-assign]
    await bot.setup_hook()
    return bot, recorder


async def test_intents_are_minimal(service: QTuneService) -> None:
    bot = QTuneBot(Settings(), service=service)
    intents = bot.intents
    assert intents.guilds
    assert intents.guild_reactions
    assert not intents.message_content
    assert not intents.members
    assert not intents.presences
    assert intents.value == discord.Intents(guilds=True, guild_reactions=True).value
    await bot.close()


async def test_endpoints_come_from_settings(service: QTuneService) -> None:
    settings = Settings(api_base="http://127.0.0.1:9/api/v10", gateway_url="ws://127.0.0.1:9/gw")
    bot = QTuneBot(settings, service=service)
    assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
    route = discord.http.Route("GET", "/users/@me")
    assert route.url == "http://127.0.0.1:9/api/v10/users/@me"
    assert yarl.URL("ws://127.0.0.1:9/gw") == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    await bot.close()


async def test_setup_hook_loads_every_cog_and_installs_the_error_policy(
    service: QTuneService,
) -> None:
    bot, recorder = await started(Settings(dev_guild=555), service)
    names = sorted(c.name for c in bot.tree.get_commands(guild=discord.Object(555)))
    assert names == ["export", "help", "nowplaying", "qtable", "reset", "simulate", "stats"]
    assert bot.failed_extensions == []
    assert {"Reactions", "TreePolicy"} <= set(bot.cogs)
    assert bot.tree.on_error == bot.cogs["TreePolicy"].on_app_command_error  # type: ignore[attr-defined]
    assert recorder.calls == [555]
    assert await service.get_meta(SYNC_HASH_KEY)
    await bot.close()


async def test_a_failing_cog_does_not_stop_the_others(service: QTuneService, caplog: Any) -> None:
    extensions = ("cogs.recommend", "cogs.no_such_cog", "cogs.table")
    bot, recorder = await started(Settings(), service, extensions)
    names = sorted(c.name for c in bot.tree.get_commands())
    assert names == ["nowplaying", "qtable"]
    assert bot.failed_extensions == ["cogs.no_such_cog"]
    failure = [r for r in caplog.records if "cogs.no_such_cog" in r.getMessage()]
    assert failure
    assert failure[0].exc_info is not None
    # Syncing now would delete the broken cog's commands from Discord: skipped.
    assert recorder.calls == []
    assert bot.commands_synced is None
    await bot.close()


async def test_close_waits_for_work_in_flight(service: QTuneService) -> None:
    bot = QTuneBot(Settings(), service=service)
    finished = []

    async def work() -> None:
        async with bot.in_flight.hold():
            await asyncio.sleep(0.05)
            finished.append(True)

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await bot.close()
    assert finished == [True]
    assert bot.in_flight.count == 0
    await task
    await bot.close()  # idempotent


async def test_setting_the_presence_keeps_shutdown_tracking(service: QTuneService) -> None:
    """``Client.activity`` is the presence; the in-flight tracker has its own name."""
    bot = QTuneBot(Settings(), service=service)
    bot.activity = discord.Game("qtune")
    assert isinstance(bot.activity, discord.Game)
    finished = []

    async def work() -> None:
        async with bot.in_flight.hold():
            await asyncio.sleep(0.05)
            finished.append(True)

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await bot.close()
    assert finished == [True]
    await task


async def test_close_stops_simulations(service: QTuneService) -> None:
    bot = QTuneBot(Settings(), service=service)
    await bot.close()
    with pytest.raises(Cancelled, match="restarting"):
        await service.run_cpu(sum, [1, 2])


async def test_a_failing_background_task_is_logged(service: QTuneService, caplog: Any) -> None:
    bot = QTuneBot(Settings(), service=service)

    async def boom() -> None:
        raise RuntimeError("kaput")

    task = bot.spawn(boom(), "qtune-test")
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)
    errors = [r for r in caplog.records if "qtune-test" in r.getMessage()]
    assert errors
    assert errors[0].exc_info is not None
    await bot.close()


def _imported(name: str) -> bool:
    import sys

    return name in sys.modules


async def test_setup_hook_warms_the_worker_without_waiting_for_it(tmp_path: Any) -> None:
    """The worker process starts at start-up, in the background: setup_hook returns first,
    then the worker is up with matplotlib loaded before any chart is asked for."""
    settings = Settings(db_path=tmp_path / "app.db")
    service, storage = await open_service(settings, cpu=True)
    assert service.cpu is not None
    try:
        bot, _ = await started(settings, service)
        assert not service.cpu.warm  # setup_hook did not wait for it
        await asyncio.wait_for(service.cpu.start(), 60)  # the start-up's own warm-up
        assert service.cpu.warm
        assert await service.run_cpu(_imported, "matplotlib")
        await bot.close()
    finally:
        await storage.close()


async def test_close_is_bounded_when_nothing_finishes(
    service: QTuneService, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """Issue 14 §2: work in flight that never ends and a gateway close that never returns
    (discord.py's close stands still here) do not hold close(): it returns after its grace,
    says what it left, and still closes the HTTP session."""
    import bot.app.bot as app_bot

    monkeypatch.setattr(app_bot, "SHUTDOWN_GRACE", 1.0)
    monkeypatch.setattr(app_bot, "GATEWAY_CLOSE_TIMEOUT", 0.3)
    never = asyncio.Event()

    async def stuck_close(self: Any) -> None:
        await never.wait()

    monkeypatch.setattr(discord.ext.commands.Bot, "close", stuck_close)
    bot = QTuneBot(Settings(), service=service)
    http_closed = []

    async def close_http() -> None:
        http_closed.append(True)

    monkeypatch.setattr(bot.http, "close", close_http)

    async def work() -> None:
        async with bot.in_flight.hold():
            await never.wait()

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    await asyncio.wait_for(bot.close(), 10)  # the grace is 1 s: far less than 10
    assert http_closed == [True]
    messages = [r.getMessage() for r in caplog.records]
    assert any("1 operation(s) still running at shutdown" in m for m in messages)
    assert any("the gateway did not close" in m for m in messages)
    task.cancel()
