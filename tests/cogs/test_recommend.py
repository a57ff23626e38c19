"""/nowplaying and the cooldowns, on the real service over the in-memory storage."""

from __future__ import annotations

import pytest
from discord import app_commands

from bot.config import Settings
from bot.errors import UnknownGenre
from bot.service import QTuneService
from cogs.common import THUMBS_DOWN, THUMBS_UP, Cooldowns
from cogs.recommend import Recommend
from storage.base import Recommendation
from tests.cogs.fakes import FakeBot, FakeInteraction, kinds


async def nowplaying(cog: Recommend, interaction: FakeInteraction, genre: str) -> None:
    await Recommend.nowplaying.callback(cog, interaction, genre)  # type: ignore[arg-type]


async def posted(service: QTuneService) -> dict[int, Recommendation]:
    """The stored, not yet rewarded recommendations, by message id."""
    return {r.message_id: r for r in await service.pending()}


async def test_nowplaying_records_before_adding_reactions(fake_bot, service, storage):
    cog = Recommend(fake_bot)
    inter = FakeInteraction(
        fake_bot,
        user_id=42,
        guild_id=7,
        channel_id=8,
        message_id=1234,
        on_react=lambda: 1234 in storage.database.recommendations,
    )
    await nowplaying(cog, inter, "  rOcK ")

    events = fake_bot.events
    # The callback's answer holds the message: no original_response() GET.
    assert kinds(events) == ["send_message", "react", "react"]
    [rec] = (await posted(service)).values()
    assert (rec.message_id, rec.user_id, rec.guild_id, rec.channel_id) == (1234, 42, 7, 8)
    assert rec.state == "Rock"
    _, content, kwargs = events[0]
    assert f"**Rock**. Try **{rec.action}** next!" in content  # what was stored was shown
    assert THUMBS_UP in content
    assert THUMBS_DOWN in content
    assert not kwargs.get("ephemeral")  # the reply is public
    assert events[1] == ("react", 1234, THUMBS_UP, True)  # stored before the first reaction
    assert events[2] == ("react", 1234, THUMBS_DOWN, True)
    assert (await service.table(42)).current_genre == "Rock"
    assert fake_bot.in_flight.count == 0


@pytest.mark.parametrize("typed", ["hip hop", "Hip-Hop", "hip_hop", " HIPHOP "])
async def test_nowplaying_accepts_aliases(fake_bot, service, typed):
    cog = Recommend(fake_bot)
    await nowplaying(cog, FakeInteraction(fake_bot), typed)
    [rec] = (await posted(service)).values()
    assert rec.state == "HipHop"
    assert (await service.table(42)).current_genre == "HipHop"
    assert "**HipHop**" in fake_bot.events[0][1]


async def test_unknown_genre_stores_nothing_and_lists_genres(fake_bot, service, storage):
    cog = Recommend(fake_bot)
    with pytest.raises(UnknownGenre) as info:
        await nowplaying(cog, FakeInteraction(fake_bot), "polka")
    assert fake_bot.events == []  # no reply, no reactions
    assert storage.database.users == {}  # no user created
    assert storage.database.recommendations == {}  # nothing recorded
    for genre in service.genres:
        assert genre in str(info.value)


async def test_missing_reaction_permission_is_explained_privately(fake_bot, service):
    cog = Recommend(fake_bot)
    inter = FakeInteraction(fake_bot, forbid_reactions=True)
    await nowplaying(cog, inter, "pop")
    assert 1234 in await posted(service)  # still recorded: the user may react by hand
    kind, content, kwargs = fake_bot.events[-1]
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
        ("hip hop", ["HipHop"]),
        ("zzz", []),
    ],
)
async def test_autocomplete(fake_bot, typed, expected):
    cog = Recommend(fake_bot)
    choices = await Recommend.genre_autocomplete(cog, FakeInteraction(fake_bot), typed)  # type: ignore[arg-type]
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
    await nowplaying(cog, FakeInteraction(bot, user_id=42, message_id=1), "rock")  # no cost
    before = list(bot.events)
    with pytest.raises(app_commands.CommandOnCooldown) as info:
        await nowplaying(cog, FakeInteraction(bot, user_id=42, message_id=2), "jazz")
    assert 0 < info.value.retry_after <= 30
    assert bot.events == before  # nothing sent...
    assert list(await posted(service)) == [1]  # ...nothing recommended
    assert (await service.table(42)).current_genre == "Rock"
    await nowplaying(cog, FakeInteraction(bot, user_id=43, message_id=3), "jazz")  # another user
    assert (await posted(service))[3].state == "Jazz"


async def test_cooldown_zero_disables_it(service):
    bot = FakeBot(service, Settings(cooldown=0))
    cog = Recommend(bot)
    for mid in range(3):
        await nowplaying(cog, FakeInteraction(bot, user_id=42, message_id=mid), "rock")
    assert sorted(await posted(service)) == [0, 1, 2]


def test_suggestion_text_ends_with_the_services_reason():
    from cogs.recommend import suggestion_text

    text = suggestion_text("Classical", "Jazz", "You liked Jazz 4 of 5 times after Classical.")
    assert text.splitlines()[-1] == "-# You liked Jazz 4 of 5 times after Classical."
    assert "ε" not in text
