"""What the fake Discord knows: guilds, messages, interactions, requests and gateway sessions.

Plain records, no I/O. The REST and gateway handlers change them; the driver
(:class:`tests.fakediscord.server.FakeDiscord`) reads them for assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"

# Gateway opcodes.
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_RESUME = 6
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# Gateway close codes.
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13

# Message flags.
FLAG_EPHEMERAL = 64
FLAG_LOADING = 128

# View Channel, Send Messages, Embed Links, Attach Files, Read Message History, Add Reactions.
BOT_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6))


class Snowflakes:
    """Real-looking snowflakes: the current time in the high bits, a counter in the low ones."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """A snowflake whose guild would be routed to ``shard_id`` of ``shard_count``."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        ms += (shard_id - ms) % shard_count
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord routes a guild's events to."""
    return (guild_id >> 22) % shard_count


@dataclass
class Guild:
    """One guild (server) and its text channels; the first channel is the default one."""

    id: int
    name: str
    channel_ids: list[int]

    @property
    def channel_id(self) -> int:
        return self.channel_ids[0]


@dataclass
class Part:
    """One part of a multipart body: ``payload_json`` (parsed into ``json``) or a file."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes
    json: Any = None


@dataclass
class Request:
    """One HTTP request the fake received."""

    index: int
    time: float  # seconds since the fake started
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any = None  # the JSON body, or the parsed payload_json of a multipart body
    parts: list[Part] = field(default_factory=list)
    authorized: bool = False
    status: int | None = None
    response: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # of the response

    @property
    def files(self) -> list[Part]:
        return [p for p in self.parts if p.filename is not None]

    def summary(self, limit: int = 300) -> str:
        body = "" if self.json is None else " json=" + json.dumps(self.json)[:limit]
        files = "".join(f" file={p.filename}({len(p.data)}B,{p.content_type})" for p in self.files)
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        return f"+{self.time:7.3f}s {self.method} {self.path}{query} -> {self.status}{body}{files}"


REQUEST_KEY = web.RequestKey("qtune_fake_request", Request)


@dataclass
class Attachment:
    id: int
    filename: str
    content_type: str | None
    data: bytes
    description: str | None = None


@dataclass
class Message:
    """Discord's view of one message, including who reacted with what (in order)."""

    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ""
    flags: int = 0
    embeds: list[Any] = field(default_factory=list)
    components: list[Any] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reactions: dict[str, list[int]] = field(default_factory=dict)  # emoji -> user ids
    # (emoji, user id) -> when the reaction reached the fake, and when its
    # MESSAGE_REACTION_ADD frame was written (seconds since the fake started).
    reacted_at: dict[tuple[str, int], float] = field(default_factory=dict)
    dispatched_at: dict[tuple[str, int], float] = field(default_factory=dict)
    interaction_id: int | None = None
    webhook_id: int | None = None
    deleted: bool = False
    edits: int = 0
    created: float = 0.0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    def has_reactions(self, user_id: int, emojis: list[str]) -> bool:
        return all(user_id in self.reactions.get(e, []) for e in emojis)


@dataclass
class Interaction:
    """An interaction the fake pushed, and what the bot answered."""

    id: int
    token: str
    type: int
    name: str | None
    user_id: int
    channel_id: int
    guild_id: int | None
    payload: dict[str, Any]
    sent_at: float
    written_at: float | None = None  # when its INTERACTION_CREATE frame was written
    callback: Request | None = None
    callback_type: int | None = None
    callback_at: float | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    responded: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def callback_data(self) -> dict[str, Any]:
        if self.callback is None or not isinstance(self.callback.json, dict):
            return {}
        return self.callback.json.get("data") or {}


@dataclass
class GatewaySession:
    """One websocket connection; ``shard`` is ``(id, count)`` from its IDENTIFY."""

    id: str
    ws: web.WebSocketResponse
    connected_at: float
    intents: int | None = None
    identified: bool = False
    shard: tuple[int, int] = (0, 1)
    guild_ids: list[int] = field(default_factory=list)  # the guilds its READY listed
    sequence: int = 0
    closed_at: float | None = None
    close_code: int | None = None
    events_sent: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wants(self, intent: int) -> bool:
        return self.intents is None or bool(self.intents & intent)

    @property
    def open(self) -> bool:
        return self.identified and self.closed_at is None and not self.ws.closed

    def serves(self, guild_id: int | None) -> bool:
        """Whether Discord routes this guild's events (None: a DM) to this session's shard."""
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, count) == shard_id


@dataclass
class World:
    """Everything the fake remembers, shared by the REST handlers, the gateway and the driver."""

    token: str
    application_id: int
    bot_user_id: int
    owner_id: int
    guilds: dict[int, Guild]
    echo_own_reactions: bool = True
    base_url: str = ""
    snowflake: Snowflakes = field(default_factory=Snowflakes)
    user_names: dict[int, str] = field(default_factory=dict)
    bot_users: set[int] = field(default_factory=set)
    member_permissions: dict[int, str] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    interactions: dict[int, Interaction] = field(default_factory=dict)
    interactions_by_token: dict[str, Interaction] = field(default_factory=dict)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)  # None: global
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # gateway and other notable events
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        self.log.append(f"+{self.elapsed():7.3f}s {text}")

    def channel_guild(self, channel_id: int) -> Guild | None:
        for guild in self.guilds.values():
            if channel_id in guild.channel_ids:
                return guild
        return None

    def interaction_for(self, token: str, iid: str = "") -> Interaction | None:
        inter = self.interactions_by_token.get(token)
        if inter is None or (iid and str(inter.id) != iid):
            return None
        return inter
