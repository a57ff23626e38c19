"""/qtable on the real service over the in-memory storage."""

from __future__ import annotations

import discord
import numpy as np
import pytest
from discord import app_commands

import cogs.table as table_mod
from bot.service import QTuneService, TableView
from cogs.table import Table, table_message
from tests.cogs.charts import PNG, ChartCalls, patch_charts
from tests.cogs.fakes import FakeInteraction, kinds


@pytest.fixture(autouse=True)
def charts(monkeypatch: pytest.MonkeyPatch) -> ChartCalls:
    return patch_charts(monkeypatch, table_mod)


async def qtable(bot, inter: FakeInteraction, user=None, public: bool = False) -> None:
    await Table.qtable.callback(Table(bot), inter, user, public)  # type: ignore[arg-type]


async def liked(service: QTuneService, user_id: int, times: int) -> None:
    """``times`` 👍 on Rock suggestions, as the reactions cog would apply them."""
    for mid in range(times):
        suggestion = await service.recommend(user_id, "Rock")
        await service.record(user_id * 1000 + mid, suggestion, 7, 8)
        assert (await service.feedback(user_id * 1000 + mid, user_id, True)).applied


def attachment(kwargs: dict) -> discord.File:
    file = kwargs["file"]
    assert isinstance(file, discord.File)
    return file


async def test_qtable_own_table_is_ephemeral_with_png_and_text(fake_bot, service, charts):
    await liked(service, 42, 3)
    view = await service.table(42)
    inter = FakeInteraction(fake_bot, user_id=42, command="qtable")
    await qtable(fake_bot, inter)
    assert kinds(fake_bot.events) == ["defer", "followup"]
    assert fake_bot.events[0][1]["ephemeral"] is True
    _, content, kwargs = fake_bot.events[1]
    file = attachment(kwargs)
    assert file.filename == "qtable.png"
    assert file.fp.read() == PNG
    assert "```" in content
    assert f"ε = {0.995**3:.3f}" in content  # the stored ε after three rewards
    assert "3 rewards" in content
    assert f"now on {view.current_genre}" in content
    assert charts == [("qtable", 5, "Q-table for user42", True)]  # rendered off the loop


async def test_qtable_public_option(fake_bot, service):
    await liked(service, 42, 1)
    await qtable(fake_bot, FakeInteraction(fake_bot, command="qtable"), None, True)
    assert fake_bot.events[0][1]["ephemeral"] is False


async def test_qtable_without_data_says_so_and_draws_nothing(fake_bot, service, charts):
    await qtable(fake_bot, FakeInteraction(fake_bot, user_id=42, command="qtable"))
    kind, content, kwargs = fake_bot.events[-1]
    assert kind == "followup"
    assert kwargs["ephemeral"] is True
    assert content.startswith("No data yet")
    assert charts == []


async def test_other_members_table_needs_manage_server(fake_bot, service, charts):
    await liked(service, 77, 2)
    other = type("U", (), {"id": 77, "display_name": "someone"})()
    inter = FakeInteraction(fake_bot, user_id=42, command="qtable")
    with pytest.raises(app_commands.MissingPermissions):
        await qtable(fake_bot, inter, other)
    assert fake_bot.events == []

    admin = FakeInteraction(
        fake_bot, user_id=42, command="qtable", permissions=discord.Permissions(manage_guild=True)
    )
    await qtable(fake_bot, admin, other)
    assert "2 rewards" in fake_bot.events[-1][1]  # user 77's table, not the caller's
    assert charts[-1][2] == "Q-table for someone"


async def test_other_members_table_not_in_dms(fake_bot):
    other = type("U", (), {"id": 77, "display_name": "someone"})()
    inter = FakeInteraction(
        fake_bot, guild_id=None, permissions=discord.Permissions.all(), command="qtable"
    )
    with pytest.raises(app_commands.MissingPermissions):
        await qtable(fake_bot, inter, other)


def test_table_message_falls_back_when_too_wide():
    genres = tuple(f"genre-with-a-long-name-{i}" for i in range(25))
    q = np.zeros((25, 25))
    view = TableView(1, genres, q, 1.0, 0, None, dict.fromkeys(genres, genres[0]))
    message = table_message("x", view)
    assert len(message) < 2000
    assert "see image" in message
