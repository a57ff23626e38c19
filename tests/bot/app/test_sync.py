"""Command sync by hash: once per change of definitions or target, never with a cog missing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.app.bot import QTuneBot
from bot.app.sync import SYNC_HASH_KEY, command_hash, sync_if_changed, sync_target
from bot.config import Settings
from bot.service import QTuneService

pytestmark = pytest.mark.timeout(30)


class SyncRecorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int | None] = []
        self.fail = fail

    async def __call__(self, *, guild: discord.abc.Snowflake | None = None) -> list[str]:
        self.calls.append(guild.id if guild is not None else None)
        if self.fail:
            raise discord.HTTPException(SimpleNamespace(status=400, reason="Bad"), "nope")
        return ["cmd"]


async def loaded_bot(service: QTuneService, fail: bool = False) -> tuple[QTuneBot, SyncRecorder]:
    bot = QTuneBot(Settings(), service=service)
    for name in ("cogs.recommend", "cogs.table", "cogs.simulate", "cogs.reset"):
        await bot.load_extension(name)
    recorder = SyncRecorder(fail)
    bot.tree.sync = recorder  # type: ignore[method-assign]
    return bot, recorder


async def test_syncs_once_per_definition_and_target(service: QTuneService) -> None:
    bot, recorder = await loaded_bot(service)
    assert await sync_if_changed(bot.tree, service, 555) is True
    assert await sync_if_changed(bot.tree, service, 555) is False  # unchanged: no PUT
    assert await sync_if_changed(bot.tree, service, None) is True  # another target
    assert recorder.calls == [555, None]
    await bot.close()


async def test_the_hash_follows_the_definitions(service: QTuneService) -> None:
    bot, _ = await loaded_bot(service)
    guild = sync_target(555)
    before = command_hash(bot.tree, guild)
    assert command_hash(bot.tree, guild) == before  # stable
    await bot.unload_extension("cogs.table")
    assert command_hash(bot.tree, sync_target(None)) != command_hash(bot.tree, guild)
    assert command_hash(bot.tree, guild) != before
    await bot.close()


async def test_a_failed_sync_is_retried_next_start(service: QTuneService, caplog: Any) -> None:
    bot, recorder = await loaded_bot(service, fail=True)
    assert await sync_if_changed(bot.tree, service, None) is None
    assert recorder.calls == [None]
    assert await service.get_meta(SYNC_HASH_KEY) is None
    assert any("syncing app commands" in r.getMessage() for r in caplog.records)
    await bot.close()
    bot2, recorder2 = await loaded_bot(service)
    assert await sync_if_changed(bot2.tree, service, None) is True
    assert recorder2.calls == [None]
    await bot2.close()


async def test_no_sync_while_an_extension_is_missing(service: QTuneService) -> None:
    bot, recorder = await loaded_bot(service)
    assert await sync_if_changed(bot.tree, service, None, ["cogs.broken"]) is None
    assert recorder.calls == []
    await bot.close()
