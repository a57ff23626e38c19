"""/qtable, /simulate and /reset adapters over a fake service."""

from __future__ import annotations

import discord
import numpy as np
import pytest
from discord import app_commands

import cogs.simulate as simulate_mod
import cogs.table as table_mod
from bot.config import Settings
from bot.errors import InvalidRequest
from bot.render.text import format_q_table, table_dict
from cogs.reset import ConfirmReset, Reset
from cogs.simulate import Simulate
from cogs.table import Table, table_message
from tests.cogs.conftest import FakeBot, FakeInteraction, FakeService, TableView, kinds

PNG = b"\x89PNG\r\n\x1a\nfake"


@pytest.fixture(autouse=True)
def fake_charts(monkeypatch):
    """The charts are tested by their owner; here only their use is checked."""
    calls = []

    def qtable(genres, q, title):
        calls.append(("qtable", len(genres), title))
        return PNG

    def curve(rewards, title, user=None, genres=None):
        calls.append(("curve", len(rewards), title))
        assert user is not None, "the simulated user is passed, for the best-reward line"
        assert genres
        return PNG

    monkeypatch.setattr(table_mod, "render_qtable_png", qtable)
    monkeypatch.setattr(simulate_mod, "render_curve_png", curve)
    return calls


def attachment(kwargs) -> discord.File:
    file = kwargs["file"]
    assert isinstance(file, discord.File)
    return file


# ------------------------------------------------------------------ /qtable
async def test_qtable_own_table_is_ephemeral_with_png_and_text(fake_bot, service, fake_charts):
    inter = FakeInteraction(fake_bot, user_id=42, command="qtable")
    await Table.qtable.callback(Table(fake_bot), inter, None, False)
    assert kinds(service.events) == ["defer", "table", "run_cpu", "followup"]  # PNG off the loop
    assert service.events[0][1]["ephemeral"] is True
    assert service.events[1] == ("table", 42)
    _, content, kwargs = service.events[3]
    file = attachment(kwargs)
    assert file.filename == "qtable.png"
    assert file.fp.read() == PNG
    assert "```" in content
    assert "ε = 0.500" in content
    assert "3 rewards" in content
    assert fake_charts == [("qtable", 5, "Q-table for user42")]


async def test_qtable_public_option(fake_bot, service):
    inter = FakeInteraction(fake_bot, command="qtable")
    await Table.qtable.callback(Table(fake_bot), inter, None, True)
    assert service.events[0][1]["ephemeral"] is False


async def test_other_members_table_needs_manage_server(fake_bot, service):
    other = type("U", (), {"id": 77, "display_name": "someone"})()
    inter = FakeInteraction(fake_bot, user_id=42, command="qtable")
    with pytest.raises(app_commands.MissingPermissions):
        await Table.qtable.callback(Table(fake_bot), inter, other, False)
    assert service.events == []

    admin = FakeInteraction(
        fake_bot,
        user_id=42,
        command="qtable",
        permissions=discord.Permissions(manage_guild=True),
    )
    await Table.qtable.callback(Table(fake_bot), admin, other, False)
    assert ("table", 77) in service.events


async def test_other_members_table_not_in_dms(fake_bot, service):
    other = type("U", (), {"id": 77, "display_name": "someone"})()
    inter = FakeInteraction(
        fake_bot, guild_id=None, permissions=discord.Permissions.all(), command="qtable"
    )
    with pytest.raises(app_commands.MissingPermissions):
        await Table.qtable.callback(Table(fake_bot), inter, other, False)


def test_text_table_marks_best_action_per_row():
    genres = ("Pop", "Rock", "Jazz")
    q = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.5], [0.0, -1.0, 0.0]])
    text = format_q_table(genres, q, {"Pop": "Pop", "Rock": "Jazz", "Jazz": "Pop"})
    lines = text.splitlines()
    assert lines[0].split()[-3:] == ["Pop", "Rock", "Jazz"]
    assert lines[1].split() == ["Pop", "1.00*", "0.00", "0.00"]
    assert lines[2].split() == ["Rock", "0.00", "0.00", "2.50*"]
    assert lines[3].split() == ["Jazz", "0.00*", "-1.00", "0.00*"]  # a tie: both are best
    assert text.count("*") == 4


def test_table_message_falls_back_when_too_wide():
    genres = tuple(f"genre-with-a-long-name-{i}" for i in range(25))
    q = np.zeros((25, 25))
    view = TableView(1, genres, q, 1.0, 0, None, dict.fromkeys(genres, genres[0]))
    message = table_message("x", view)
    assert len(message) < 2000
    assert "see image" in message


def test_table_dict_has_the_cli_keys():
    view = TableView(5, ("A", "B"), np.array([[1.0, 2.0], [3.0, 4.0]]), 0.5, 2, "B", {})
    assert table_dict(view) == {
        "user_id": 5,
        "genres": ["A", "B"],
        "q_table": [[1.0, 2.0], [3.0, 4.0]],
        "epsilon": 0.5,
        "rewards": 2,
        "current_genre": "B",
    }


# ---------------------------------------------------------------- /simulate
async def test_simulate_defers_then_answers_with_report_and_curve(fake_bot, service, fake_charts):
    inter = FakeInteraction(fake_bot, user_id=42, command="simulate")
    await Simulate.simulate.callback(Simulate(fake_bot), inter, "Pop_Lover", 500)
    assert kinds(service.events) == ["defer", "simulate", "table", "run_cpu", "followup"]
    assert service.events[1] == ("simulate", 42, "pop_lover", 500)
    _, content, kwargs = service.events[-1]
    assert attachment(kwargs).filename == "learning_curve.png"
    assert "7.50" in content
    assert "9.25" in content
    assert "Rock→HipHop" in content  # the new policy
    assert fake_charts == [("curve", 500, "pop_lover: 500 steps")]


async def test_simulate_respects_the_configured_cap(service):
    service.max_episodes = 1000
    bot = FakeBot(service)
    inter = FakeInteraction(bot, command="simulate")
    with pytest.raises(InvalidRequest, match="1,000"):
        await Simulate.simulate.callback(Simulate(bot), inter, "generic", 1001)
    assert service.events == []  # rejected before deferring or simulating


async def test_simulate_has_a_per_user_cooldown(service):
    bot = FakeBot(service, Settings(cooldown=60))
    cog = Simulate(bot)
    await Simulate.simulate.callback(cog, FakeInteraction(bot, command="simulate"), "generic", 5)
    with pytest.raises(app_commands.CommandOnCooldown):
        await Simulate.simulate.callback(
            cog, FakeInteraction(bot, command="simulate"), "generic", 5
        )
    assert kinds(service.events).count("simulate") == 1


# ------------------------------------------------------------------- /reset
async def test_reset_with_confirm_option_deletes(fake_bot, service):
    inter = FakeInteraction(fake_bot, user_id=42, command="reset")
    await Reset.reset.callback(Reset(fake_bot), inter, True)
    assert kinds(service.events) == ["reset", "send_message"]
    assert service.events[0] == ("reset", 42)
    assert service.events[1][2]["ephemeral"] is True
    assert "deleted" in service.events[1][1]


async def test_reset_without_confirm_asks_first(fake_bot, service):
    inter = FakeInteraction(fake_bot, user_id=42, command="reset")
    await Reset.reset.callback(Reset(fake_bot), inter, False)
    assert kinds(service.events) == ["send_message"]  # nothing deleted yet
    kwargs = service.events[0][2]
    assert kwargs["ephemeral"] is True
    view = kwargs["view"]
    assert isinstance(view, ConfirmReset)
    labels = sorted(item.label for item in view.children)
    assert labels == ["Cancel", "Delete my data"]


async def test_reset_buttons():
    service = FakeService()
    bot = FakeBot(service)
    origin = FakeInteraction(bot, user_id=42)

    view = ConfirmReset(bot, 42, origin)
    stranger = FakeInteraction(bot, user_id=43)
    assert await view.interaction_check(stranger) is False
    await view.cancel.callback(FakeInteraction(bot, user_id=42))
    assert ("reset", 42) not in service.events
    assert "nothing deleted" in service.events[-1][1]["content"]

    view = ConfirmReset(bot, 42, origin)
    assert await view.interaction_check(FakeInteraction(bot, user_id=42)) is True
    await view.confirm.callback(FakeInteraction(bot, user_id=42))
    assert ("reset", 42) in service.events
    assert view.result is True
    assert service.events[-1][1]["view"] is None  # buttons removed


async def test_reset_timeout_deletes_nothing():
    service = FakeService()
    bot = FakeBot(service)
    origin = FakeInteraction(bot, user_id=42)
    view = ConfirmReset(bot, 42, origin)
    await view.on_timeout()
    assert ("reset", 42) not in service.events
    assert "nothing was deleted" in service.events[-1][1]["content"]
