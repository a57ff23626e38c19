"""The fake's sharding, proven with discord.py's own ``AutoShardedClient`` (no qtune code).

What Discord does (GUIDE §6): ``GET /gateway/bot`` recommends a shard count; IDENTIFY says
``shard: [id, count]`` and an invalid pair is closed with 4010; READY echoes the pair and
lists only that shard's guilds; a guild's events go to shard ``(guild_id >> 22) % count``,
DMs to shard 0; each shard resumes its own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl

from tests.fakediscord import FakeDiscord, GatewaySession, shard_of

pytestmark = pytest.mark.timeout(60)

USER = 360_000_000_000_000_001
DM_CHANNEL = 360_000_000_000_000_099


class ShardedClient(discord.AutoShardedClient):
    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        intents.dm_reactions = True
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.ready_event = asyncio.Event()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s wait between the shards' IDENTIFYs (the fake has no identify limit)."""

    async def on_ready(self) -> None:
        self.ready_event.set()

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.reactions.put(payload)


@pytest.fixture
def endpoints(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url)
    )


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, client: ShardedClient) -> AsyncIterator[ShardedClient]:
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait(
            {asyncio.ensure_future(client.ready_event.wait()), task},
            timeout=20,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not client.ready_event.is_set():
            raise AssertionError(f"the sharded client never became ready\n{fake.dump()}")
        yield client
    finally:
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


def open_sessions(fake: FakeDiscord) -> dict[int, GatewaySession]:
    return {s.shard[0]: s for s in fake.sessions if s.open}


async def reaction_reaches(
    fake: FakeDiscord, client: ShardedClient, channel_id: int
) -> tuple[discord.RawReactionActionEvent, dict[int, int]]:
    """A user reacts in ``channel_id``; the event the client got and the frames per shard."""
    before = {shard: s.events_sent for shard, s in open_sessions(fake).items()}
    msg = fake.create_message("hello", channel_id=channel_id)
    assert await fake.user_reacts(msg.id, USER, "👍"), fake.dump()
    payload = await asyncio.wait_for(client.reactions.get(), 5)
    assert payload.message_id == msg.id
    after = {shard: s.events_sent - before[shard] for shard, s in open_sessions(fake).items()}
    return payload, after


async def test_recommended_shards_split_the_guilds(fake: FakeDiscord, endpoints: None) -> None:
    fake.recommended_shards = 2
    extra = [fake.add_guild(shard=(shard, 2)) for shard in (0, 1, 1)]
    async with running(fake, ShardedClient()) as client:
        asked = fake.find_requests("GET", "/gateway/bot")
        assert len(asked) == 1, fake.dump()
        assert asked[0].authorized
        assert client.shard_count == 2
        sessions = open_sessions(fake)
        assert sorted(sessions) == [0, 1]
        assert all(s.shard == (shard, 2) for shard, s in sessions.items())
        every = set(fake.guilds)
        for shard, session in sessions.items():
            assert set(session.guild_ids) == {g for g in every if shard_of(g, 2) == shard}
        assert {g.id for g in client.guilds} == every
        assert all(g.shard_id == shard_of(g.id, 2) for g in client.guilds)
        assert {e.id for e in extra} <= every


async def test_events_follow_their_guild_and_dms_go_to_shard_0(
    fake: FakeDiscord, endpoints: None
) -> None:
    on_0, on_1 = fake.add_guild(shard=(0, 2)), fake.add_guild(shard=(1, 2))
    async with running(fake, ShardedClient(shard_count=2)) as client:
        assert not fake.find_requests("GET", "/gateway/bot"), "shard_count given: no lookup"
        for guild, shard in ((on_0, 0), (on_1, 1)):
            payload, frames = await reaction_reaches(fake, client, guild.channel_id)
            assert payload.guild_id == guild.id
            assert frames == {shard: 1, 1 - shard: 0}, fake.dump()
        payload, frames = await reaction_reaches(fake, client, DM_CHANNEL)
        assert payload.guild_id is None
        assert frames == {0: 1, 1: 0}, fake.dump()


@pytest.mark.parametrize("shard", [[2, 2], [0, 0], [-1, 2], [1], "0,1", [0.0, 1]])
async def test_invalid_shard_is_closed_with_4010(fake: FakeDiscord, shard: Any) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["op"] == 10
        identify = {"token": fake.token, "intents": 1, "properties": {}, "shard": shard}
        await ws.send_str(json.dumps({"op": 2, "d": identify}))
        frame = await ws.receive(timeout=5)
        assert frame.type == aiohttp.WSMsgType.CLOSE, frame
        assert ws.close_code == 4010
    assert not any(s.identified for s in fake.sessions)


async def test_ready_echoes_a_valid_shard(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        await ws.receive_json(timeout=5)
        identify = {"token": fake.token, "intents": 1, "properties": {}, "shard": [1, 3]}
        await ws.send_str(json.dumps({"op": 2, "d": identify}))
        ready = await ws.receive_json(timeout=5)
        assert ready["t"] == "READY"
        assert ready["d"]["shard"] == [1, 3]
        listed = {int(g["id"]) for g in ready["d"]["guilds"]}
        assert listed == {g for g in fake.guilds if shard_of(g, 3) == 1}


async def test_each_shard_resumes_its_own_session(fake: FakeDiscord, endpoints: None) -> None:
    on_1 = fake.add_guild(shard=(1, 2))
    async with running(fake, ShardedClient(shard_count=2)) as client:
        first = open_sessions(fake)
        await fake.disconnect_gateway(4000, shard_id=1)
        await fake.wait_until(
            lambda: (s := open_sessions(fake).get(1)) is not None and s is not first[1],
            within=15,
            what="shard 1 to resume",
        )
        now = open_sessions(fake)
        assert now[0] is first[0], "shard 0 kept its connection"
        assert now[1].id == first[1].id, "shard 1 resumed its session, not a new one"
        assert now[1].shard == (1, 2)
        assert any("RESUMED shard=[1, 2]" in line for line in fake.log), fake.dump()
        assert sum(s.shard == (1, 2) and s.identified for s in fake.sessions) == 2
        payload, frames = await reaction_reaches(fake, client, on_1.channel_id)
        assert payload.guild_id == on_1.id
        assert frames == {0: 0, 1: 1}


async def test_two_processes_split_four_shards(fake: FakeDiscord, endpoints: None) -> None:
    """A cluster: each client runs two of four shards and gets only those guilds' events."""
    guilds = {shard: fake.add_guild(shard=(shard, 4)) for shard in range(4)}
    low = ShardedClient(shard_count=4, shard_ids=[0, 1])
    high = ShardedClient(shard_count=4, shard_ids=[2, 3])
    async with running(fake, low), running(fake, high):
        assert sorted(s.shard for s in fake.sessions if s.open) == [(i, 4) for i in range(4)]
        for client, shards in ((low, (0, 1)), (high, (2, 3))):
            expected = {g for g in fake.guilds if shard_of(g, 4) in shards}
            assert {g.id for g in client.guilds} == expected
        msg = fake.create_message("hi", channel_id=guilds[3].channel_id)
        assert await fake.user_reacts(msg.id, USER, "👍")
        payload = await asyncio.wait_for(high.reactions.get(), 5)
        assert payload.guild_id == guilds[3].id
        assert low.reactions.empty()
