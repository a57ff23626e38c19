"""/nowplaying and the cooldowns, over a fake service and narrow discord fakes."""

from __future__ import annotations

import pytest
from discord import app_commands

from bot.config import Settings
from bot.errors import UnknownGenre
from cogs.common import THUMBS_DOWN, THUMBS_UP, Cooldowns
from cogs.recommend import Recommend
from tests.cogs.conftest import FakeBot, FakeInteraction, kinds


async def nowplaying(cog: Recommend, interaction, genre: str) -> None:
    await Recommend.nowplaying.callback(cog, interaction, genre)


async def test_nowplaying_records_before_adding_reactions(fake_bot, service):
    cog = Recommend(fake_bot)
    inter = FakeInteraction(fake_bot, user_id=42, guild_id=7, channel_id=8, message_id=1234)
    await nowplaying(cog, inter, "  rOcK ")

    assert kinds(service.events) == [
        "recommend",
        "send_message",
        "original_response",
        "record",
        "react",
        "react",
    ]
    assert service.events[0] == ("recommend", 42, "Rock")
    _, content, kwargs = service.events[1]
    assert "Rock" in content
    assert "Jazz" in content
    assert THUMBS_UP in content
    assert THUMBS_DOWN in content
    assert not kwargs.get("ephemeral")  # the reply is public
    _, message_id, suggestion, guild_id, channel_id = service.events[3]
    assert (message_id, guild_id, channel_id) == (1234, 7, 8)
    assert (suggestion.state, suggestion.action) == ("Rock", "Jazz")
    assert service.events[4][2] == THUMBS_UP
    assert service.events[5][2] == THUMBS_DOWN
    assert fake_bot.in_flight.count == 0


async def test_nowplaying_accepts_aliases(fake_bot, service):
    cog = Recommend(fake_bot)
    await nowplaying(cog, FakeInteraction(fake_bot), "hip hop")
    assert service.events[0] == ("recommend", 42, "HipHop")


async def test_unknown_genre_stores_nothing_and_lists_genres(fake_bot, service):
    cog = Recommend(fake_bot)
    with pytest.raises(UnknownGenre) as info:
        await nowplaying(cog, FakeInteraction(fake_bot), "polka")
    assert service.events == []  # no recommendation, no reply, no reactions
    for genre in service.genres:
        assert genre in str(info.value)


async def test_missing_reaction_permission_is_explained_privately(fake_bot, service):
    cog = Recommend(fake_bot)
    inter = FakeInteraction(fake_bot, forbid_reactions=True)
    await nowplaying(cog, inter, "pop")
    assert "record" in kinds(service.events)
    kind, content, kwargs = service.events[-1]
    assert kind == "followup"
    assert kwargs["ephemeral"] is True
    assert "Add Reactions" in content


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", ["Pop", "Rock", "Jazz", "Classical", "HipHop"]),
        ("ro", ["Rock"]),
        ("CLASS", ["Classical"]),
        ("hip-hop", ["HipHop"]),
        ("zzz", []),
    ],
)
async def test_autocomplete(fake_bot, typed, expected):
    cog = Recommend(fake_bot)
    choices = await Recommend.genre_autocomplete(cog, FakeInteraction(fake_bot), typed)
    assert [c.value for c in choices] == expected


def test_cooldowns_per_user_and_command():
    now = [100.0]
    cd = Cooldowns(3.0, clock=lambda: now[0])
    assert cd.hit("nowplaying", 1) is None
    assert cd.hit("nowplaying", 1) == pytest.approx(3.0)
    assert cd.hit("nowplaying", 2) is None  # another user
    assert cd.hit("simulate", 1) is None  # another command
    now[0] += 3.01
    assert cd.hit("nowplaying", 1) is None
    assert Cooldowns(0).hit("x", 1) is None
    assert Cooldowns(0).hit("x", 1) is None


async def test_cooldown_is_per_user_and_spares_typos(service):
    bot = FakeBot(service, Settings(cooldown=30))
    cog = Recommend(bot)
    with pytest.raises(UnknownGenre):
        await nowplaying(cog, FakeInteraction(bot, user_id=42), "rokc")
    await nowplaying(cog, FakeInteraction(bot, user_id=42), "rock")  # the typo cost nothing
    before = list(service.events)
    with pytest.raises(app_commands.CommandOnCooldown) as info:
        await nowplaying(cog, FakeInteraction(bot, user_id=42), "jazz")
    assert 0 < info.value.retry_after <= 30
    assert service.events == before  # nothing recommended, nothing sent
    await nowplaying(cog, FakeInteraction(bot, user_id=43), "jazz")  # another user
    assert ("recommend", 43, "Jazz") in service.events


async def test_cooldown_zero_disables_it(service):
    bot = FakeBot(service, Settings(cooldown=0))
    cog = Recommend(bot)
    for _ in range(3):
        await nowplaying(cog, FakeInteraction(bot, user_id=42), "rock")
    assert [e[0] for e in service.events].count("recommend") == 3


def test_suggestion_text_ends_with_the_services_reason():
    from cogs.recommend import suggestion_text

    text = suggestion_text("Classical", "Jazz", "You liked Jazz 4 of 5 times after Classical.")
    assert text.splitlines()[-1] == "-# You liked Jazz 4 of 5 times after Classical."
    assert "ε" not in text
