"""/help, /export and /stats (issue 13 §4) through the real client, service and SQLite."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_pictures import only_png
from tests.fakediscord import FakeDiscord
from tests.harness import SUGGESTION, THUMBS_DOWN, THUMBS_UP, running_bot

pytestmark = pytest.mark.timeout(150)

GINA = 360_000_000_000_000_001
HAL = 360_000_000_000_000_002
IVY = 360_000_000_000_000_003
JO = 360_000_000_000_000_004
MANAGE_GUILD = str(1 << 5)


async def rate(qb, fake: FakeDiscord, user: int, genre: str, emoji: str) -> str:
    """One /nowplaying and the requester's reaction; returns the suggested genre."""
    before = await qb.rewards(user)
    _, msg = await qb.nowplaying(user, genre)
    assert await fake.user_reacts(msg.id, user, emoji)
    await qb.eventually(lambda: _more(qb, user, before), what="the reward")
    return SUGGESTION.search(msg.content).group("genre")


async def _more(qb, user: int, before: int) -> bool:
    return await qb.rewards(user) > before


async def test_help_lists_every_command(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    async with running_bot(fake, bot_env):
        inter = await fake.send_command("help", user_id=GINA)
        msg = await fake.final_message(inter.id)
        assert msg.ephemeral
        synced = {c["name"] for c in fake.commands[fake.guild_id]}
        assert {"help", "export", "stats", "nowplaying", "qtable", "reset"} <= synced
        for name in synced:
            assert f"`/{name}`" in msg.content, name
        assert THUMBS_UP in msg.content
        assert "+10" in msg.content
        assert "/reset deletes" in msg.content


async def test_export_is_the_scope_of_reset(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0"}
    async with running_bot(fake, env) as qb:
        liked = await rate(qb, fake, GINA, "rock", THUMBS_UP)
        await rate(qb, fake, GINA, "jazz", THUMBS_DOWN)
        await qb.nowplaying(HAL, "pop")  # someone else's data is not in Gina's file

        inter = await fake.send_command("export", user_id=GINA)
        msg = await fake.final_message(inter.id)
        assert msg.ephemeral
        [att] = msg.attachments
        assert att.filename == f"qtune-export-{GINA}.json"
        data = json.loads(att.data)
        assert data["user_id"] == str(GINA)
        assert len(data["recommendations"]) == 2
        assert {r["genre_now"] for r in data["recommendations"]} == {"Rock", "Jazz"}
        assert [r["reward"] for r in data["recommendations"]] == [10.0, -5.0]
        table = data["table"]
        genres = data["genres"]
        assert table["rewards_applied"] == 2
        assert table["reactions_per_cell"][genres.index("Rock")][genres.index(liked)] == 1
        view = await qb.service.table(GINA)
        assert table["q"] == view.q.tolist()

        await fake.send_command("reset", {"confirm": True}, user_id=GINA)
        await qb.eventually(lambda: _gone(qb, GINA), what="the reset")
        again = await fake.send_command("export", user_id=GINA)
        empty = json.loads((await fake.final_message(again.id)).attachments[0].data)
        assert empty["table"] is None
        assert empty["recommendations"] == []


async def _gone(qb, user: int) -> bool:
    return await qb.service.storage.get_user(user) is None


async def test_stats_me_is_a_png_of_my_history(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0"}
    async with running_bot(fake, env) as qb:
        first = await fake.send_command("stats", user_id=GINA)
        assert (await fake.final_message(first.id)).content.startswith("No data yet")
        for emoji in (THUMBS_UP, THUMBS_UP, THUMBS_DOWN):
            await rate(qb, fake, GINA, "pop", emoji)
        inter = await fake.send_command("stats", user_id=GINA)
        msg = await fake.final_message(inter.id, within=90)  # the worker process starts here
        assert msg.ephemeral
        only_png(msg, "stats.png")
        assert msg.content == "You liked 2 of my 3 suggestions you rated."


async def test_stats_server_shows_aggregates_only(
    fake: FakeDiscord, bot_env: dict[str, str]
) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0", "QTUNE_LEARNER": "seed"}
    async with running_bot(fake, env) as qb:
        await rate(qb, fake, GINA, "pop", THUMBS_UP)
        inter = await fake.send_command("stats", {"scope": "server"}, user_id=HAL)
        msg = await fake.final_message(inter.id)
        assert msg.ephemeral
        # One member rated: showing the genre would show Gina's own reaction.
        assert msg.content.startswith("Not enough members have rated"), msg.content

        for user in (HAL, IVY):
            for _ in range(3):
                await rate(qb, fake, user, "pop", THUMBS_UP)
        stats = await qb.service.server_stats(fake.guild_id, every_figure=True)
        shown = [g for g in stats.genres if g.members >= 3]
        inter = await fake.send_command("stats", {"scope": "server"}, user_id=JO)
        content = (await fake.final_message(inter.id)).content
        for g in stats.genres:
            assert (f"**{g.genre}**" in content) == (g in shown), (g, content)

        fake.member_permissions[JO] = MANAGE_GUILD  # Manage Server sees every figure
        inter = await fake.send_command("stats", {"scope": "server"}, user_id=JO)
        content = (await fake.final_message(inter.id)).content
        for g in stats.genres:
            assert f"**{g.genre}**: liked {g.share:.0%} of {g.ratings} times" in content
