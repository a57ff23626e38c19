"""The fake Discord itself, proven with a plain discord.py ``commands.Bot`` (no qtune code).

If these fail, the scenario tests cannot be trusted: fix the fake first.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import FakeDiscord, Limit, RateLimits, WaitTimeout

pytestmark = pytest.mark.timeout(30)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"\x00\xff\x00\x00"  # one red pixel, filter byte 0
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class SmokeBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.guild = discord.Object(guild_id)
        self.reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.ready_event = asyncio.Event()
        self.completed: asyncio.Queue[str] = asyncio.Queue()

        @app_commands.command(description="Echo a word and add reactions")
        async def echo(interaction: discord.Interaction, word: str) -> None:
            await interaction.response.send_message(f"echo {word}")
            msg = await interaction.original_response()
            await msg.add_reaction("👍")
            await msg.add_reaction("👎")

        @app_commands.command(description="Defer, then send a picture")
        async def picture(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await asyncio.sleep(0.05)
            file = discord.File(io.BytesIO(tiny_png()), "pixel.png")
            await interaction.followup.send("here", file=file)

        @app_commands.command(description="Ephemeral answer")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("psst", ephemeral=True)

        @app_commands.command(description="Count reaction users")
        async def count(interaction: discord.Interaction, message_id: str) -> None:
            channel = interaction.channel
            assert isinstance(channel, discord.TextChannel)
            msg = await channel.fetch_message(int(message_id))
            names = []
            for reaction in msg.reactions:
                users = [u.id async for u in reaction.users()]
                names.append(f"{reaction.emoji}={len(users)}")
            await interaction.response.send_message(" ".join(sorted(names)))

        for cmd in (echo, picture, secret, count):
            self.tree.add_command(cmd)

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=self.guild)
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        self.ready_event.set()

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.reactions.put(payload)

    async def on_app_command_completion(
        self, interaction: discord.Interaction, command: app_commands.Command
    ) -> None:
        await self.completed.put(command.name)


@pytest.fixture
async def smoke_bot(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch):
    import yarl

    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url)
    )
    bot = SmokeBot(fake.guild_id)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await asyncio.wait_for(bot.ready_event.wait(), 10)
    except TimeoutError:
        await bot.close()
        pytest.fail("smoke bot never became ready\n" + fake.dump())
    yield bot
    await bot.close()
    await asyncio.wait_for(task, 10)


async def test_connects_and_syncs(fake: FakeDiscord, smoke_bot: SmokeBot) -> None:
    assert smoke_bot.user is not None
    assert smoke_bot.user.id == fake.bot_user_id
    assert smoke_bot.application_id == fake.application_id
    guild = smoke_bot.get_guild(fake.guild_id)
    assert guild is not None
    assert guild.get_channel(fake.channel_id) is not None
    synced = fake.commands[fake.guild_id]
    assert {c["name"] for c in synced} == {"echo", "picture", "secret", "count"}, fake.dump()
    assert all(r.status and r.status < 500 for r in fake.requests), fake.dump()
    assert not fake.errors, fake.dump()
    session = fake.active_session()
    assert session is not None
    assert session.intents == (1 | 1 << 10)


async def test_slash_command_roundtrip_and_reactions(
    fake: FakeDiscord, smoke_bot: SmokeBot
) -> None:
    user = fake.add_user(111_111_111_111_111_111, "alice")
    inter = await fake.send_command("echo", {"word": "hi"}, user_id=user)
    await fake.interaction_response(inter.id)
    assert inter.callback_type == 4
    assert inter.callback_data["content"] == "echo hi"
    assert await asyncio.wait_for(smoke_bot.completed.get(), 5) == "echo"
    msg = await fake.wait_for_reactions(inter.original_message_id, ["👍", "👎"])
    assert msg.content == "echo hi"
    # Discord echoes the bot's own reactions back to it.
    own = [await asyncio.wait_for(smoke_bot.reactions.get(), 5) for _ in range(2)]
    assert {p.user_id for p in own} == {fake.bot_user_id}

    assert await fake.user_reacts(msg.id, user, "👍")
    payload = await asyncio.wait_for(smoke_bot.reactions.get(), 5)
    assert (payload.user_id, payload.message_id, str(payload.emoji)) == (user, msg.id, "👍")
    assert payload.member is not None
    assert payload.member.id == user
    assert payload.guild_id == fake.guild_id
    # A second identical reaction is not dispatched again.
    assert not await fake.user_reacts(msg.id, user, "👍")
    assert fake.reactions_of(msg.id) == {"👍": [fake.bot_user_id, user], "👎": [fake.bot_user_id]}

    count = await fake.send_command("count", {"message_id": str(msg.id)}, user_id=user)
    await fake.interaction_response(count.id)
    assert count.callback_data["content"] == "👍=2 👎=1", fake.dump()


async def test_defer_then_file_followup(fake: FakeDiscord, smoke_bot: SmokeBot) -> None:
    inter = await fake.send_command("picture", user_id=fake.add_user(222))
    await fake.interaction_response(inter.id)
    assert inter.callback_type == 5
    msg = await fake.final_message(inter.id)
    assert msg.content == "here"
    assert [a.filename for a in msg.attachments] == ["pixel.png"]
    assert msg.attachments[0].data == tiny_png()
    assert not fake.errors, fake.dump()


async def test_ephemeral_flag(fake: FakeDiscord, smoke_bot: SmokeBot) -> None:
    inter = await fake.send_command("secret", user_id=fake.add_user(333))
    await fake.interaction_response(inter.id)
    assert inter.callback_data["flags"] & 64
    assert fake.original_message(inter.id).ephemeral


async def test_reaction_while_disconnected_is_kept_not_delivered(fake: FakeDiscord) -> None:
    msg = fake.create_message("old")
    assert not await fake.user_reacts(msg.id, 444, "👍")
    assert fake.reactions_of(msg.id) == {"👍": [444]}


REACTION_PUT = "PUT channels/{c}/messages/{m}/reactions/{e}/@me"


@pytest.fixture
def limited(fake: FakeDiscord) -> FakeDiscord:
    """The same fake with Discord's rate limits switched on (set before the bot connects)."""
    fake.rest.rate_limits = RateLimits()
    return fake


async def test_discord_py_queues_reactions_on_the_rate_limit_headers(
    limited: FakeDiscord, smoke_bot: SmokeBot
) -> None:
    fake = limited
    inter = await fake.send_command("echo", {"word": "hi"}, user_id=fake.add_user(555))
    await fake.interaction_response(inter.id)
    await fake.wait_for_reactions(inter.original_message_id, ["👍", "👎"])
    puts = fake.find_requests("PUT", "/reactions/")
    assert [r.status for r in puts] == [204, 204], fake.dump()
    first, second = (r.headers for r in puts)
    assert first["X-RateLimit-Limit"] == "1"
    assert first["X-RateLimit-Remaining"] == "0"
    assert float(first["X-RateLimit-Reset-After"]) > 0
    assert first["X-RateLimit-Bucket"] == second["X-RateLimit-Bucket"]
    # discord.py read the headers and waited for the window: Discord never had to refuse.
    assert fake.rest.rate_limits is not None
    assert fake.rest.rate_limits.limited == 0
    assert all(r.status != 429 for r in fake.requests)


async def test_a_request_over_the_limit_gets_429_per_channel() -> None:
    limits = RateLimits({REACTION_PUT: Limit(1, 30.0)})
    async with FakeDiscord(rate_limits=limits) as fake:
        other = fake.add_channels(1)[0]
        here = fake.create_message("one")
        there = fake.create_message("two", channel_id=other)
        auth = {"Authorization": f"Bot {fake.token}"}
        base = fake.api_base + "/channels/{}/messages/{}/reactions/%F0%9F%91%8D/@me"
        async with aiohttp.ClientSession(headers=auth) as http:
            ok = await http.put(base.format(fake.channel_id, here.id))
            refused = await http.put(base.format(fake.channel_id, here.id))
            elsewhere = await http.put(base.format(other, there.id))
            assert (ok.status, refused.status, elsewhere.status) == (204, 429, 204)
            body = await refused.json()
            assert body["retry_after"] > 0
            assert body["global"] is False
            assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert fake.reactions_of(here.id) == {"👍": [fake.bot_user_id]}
    assert limits.limited == 1


async def test_a_wait_that_runs_out_says_what_it_waited_for(fake: FakeDiscord) -> None:
    msg = fake.create_message("nobody reacts")
    with pytest.raises(WaitTimeout) as caught:
        await fake.wait_for_reactions(msg.id, ["👍"], within=0.05)
    assert isinstance(caught.value, AssertionError)
    assert f"reactions ['👍'] on {msg.id}" in str(caught.value)
    assert "==== fake Discord" in str(caught.value)
    with pytest.raises(ValueError, match="no route"):
        fake.intercept("PUT", "channels/{c}/nothing", lambda rec: asyncio.sleep(0))
