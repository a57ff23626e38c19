"""A small fake Discord (REST + gateway) on 127.0.0.1 for end-to-end tests.

The real discord.py client talks to it unmodified: REST under ``/api/v10`` and the gateway
websocket at ``/gateway`` (plain JSON text frames, so no zlib is involved). It covers what a
slash-command bot with reactions uses, and nothing more:

- login (``GET /users/@me``, ``GET /oauth2/applications/@me``) and the gateway handshake
  (HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, RESUME -> RESUMED);
- command sync (``PUT`` global and guild commands);
- interaction callbacks (types 4, 5, 6, 7, 8; JSON or multipart with files), the original
  response and followups through the webhook routes;
- reactions: the bot's own ``PUT .../@me``, listing users, and users reacting through
  :meth:`FakeDiscord.user_reacts`, which updates the message state and pushes
  ``MESSAGE_REACTION_ADD`` to a connected bot (a reaction made while no bot is connected
  is only kept in the state, as on Discord).

Every request is recorded (:attr:`FakeDiscord.requests`), every message keeps its state
(:attr:`FakeDiscord.messages`), and :meth:`FakeDiscord.dump` renders all of it for an
assertion message. The fake never answers 5xx: a handler error becomes a 400 and is kept in
:attr:`FakeDiscord.errors`, because discord.py retries 5xx with sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

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

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10

# Message flags.
FLAG_EPHEMERAL = 64
FLAG_LOADING = 128

ALL_PERMISSIONS = str((1 << 51) - 1)
# View Channel, Send Messages, Embed Links, Attach Files, Read Message History, Add Reactions.
BOT_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6))

OPTION_TYPES = {3: "string", 4: "integer", 5: "boolean", 6: "user", 10: "number"}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _Snowflakes:
    """Real-looking snowflakes: the current time in the high bits, a counter in the low ones."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


def _json_response(obj: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim and treats
    # anything else (aiohttp's "; charset=utf-8" included) as text.
    return web.Response(
        body=json.dumps(obj).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json_response({"message": message, "code": code}, status=status)


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

    @property
    def files(self) -> list[Part]:
        return [p for p in self.parts if p.filename is not None]

    def summary(self, limit: int = 300) -> str:
        body = "" if self.json is None else " json=" + json.dumps(self.json)[:limit]
        files = "".join(f" file={p.filename}({len(p.data)}B,{p.content_type})" for p in self.files)
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        return f"+{self.time:7.3f}s {self.method} {self.path}{query} -> {self.status}{body}{files}"


_REC = web.RequestKey("qtune_fake_request", Request)


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
    id: str
    ws: web.WebSocketResponse
    connected_at: float
    intents: int | None = None
    identified: bool = False
    sequence: int = 0
    closed_at: float | None = None
    close_code: int | None = None
    events_sent: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wants(self, intent: int) -> bool:
        return self.intents is None or bool(self.intents & intent)


class FakeDiscord:
    """The fake server. ``async with FakeDiscord() as fake:`` starts it on a random port."""

    def __init__(
        self,
        *,
        token: str | None = None,
        guild_id: int = 900_000_000_000_000_001,
        channel_id: int = 900_000_000_000_000_002,
        application_id: int = 900_000_000_000_000_003,
        bot_user_id: int | None = None,
        echo_own_reactions: bool = True,
    ) -> None:
        self.token = token or "fake." + secrets.token_urlsafe(24)
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.application_id = application_id
        self.bot_user_id = bot_user_id or application_id
        self.owner_id = 900_000_000_000_000_004
        self.echo_own_reactions = echo_own_reactions
        self.snowflake = _Snowflakes()

        self.requests: list[Request] = []
        self.errors: list[str] = []
        self.log: list[str] = []  # gateway and other notable events, for the dump
        self.messages: dict[int, Message] = {}
        self.interactions: dict[int, Interaction] = {}
        self._interactions_by_token: dict[str, Interaction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # None = global
        self.sessions: list[GatewaySession] = []
        self.user_names: dict[int, str] = {self.bot_user_id: "qtune-bot"}
        self.bot_users: set[int] = {self.bot_user_id}
        self.member_permissions: dict[int, str] = {}

        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task] = set()
        self._t0 = time.monotonic()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        self._t0 = time.monotonic()

    async def close(self) -> None:
        for session in self.sessions:
            if not session.ws.closed:
                with contextlib.suppress(Exception):
                    await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    # ------------------------------------------------------------------ users and payloads
    def user_payload(self, user_id: int) -> dict[str, Any]:
        name = self.user_names.get(user_id, f"user{user_id % 100000}")
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": user_id in self.bot_users,
            "public_flags": 0,
        }

    def member_payload(self, user_id: int) -> dict[str, Any]:
        return {
            "user": self.user_payload(user_id),
            "roles": [],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "pending": False,
            "nick": None,
            "avatar": None,
            "flags": 0,
            "permissions": self.member_permissions.get(user_id, "0"),
        }

    def channel_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "music",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def guild_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.guild_id),
            "name": "qtune test guild",
            "icon": None,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": BOT_PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [self.channel_payload()],
            "members": [self.member_payload(self.bot_user_id)],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "system_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
        }

    def attachment_payload(self, att: Attachment) -> dict[str, Any]:
        url = f"{self.base_url}/attachments/{att.id}/{att.filename}"
        data: dict[str, Any] = {
            "id": str(att.id),
            "filename": att.filename,
            "size": len(att.data),
            "url": url,
            "proxy_url": url,
            "content_type": att.content_type,
        }
        if att.description:
            data["description"] = att.description
        return data

    def message_payload(self, msg: Message) -> dict[str, Any]:
        reactions = []
        for emoji, users in msg.reactions.items():
            if users:
                reactions.append(
                    {
                        "emoji": {"id": None, "name": emoji},
                        "count": len(users),
                        "count_details": {"normal": len(users), "burst": 0},
                        "me": self.bot_user_id in users,
                        "me_burst": False,
                        "burst_colors": [],
                    }
                )
        data: dict[str, Any] = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "author": msg.author,
            "content": msg.content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [self.attachment_payload(a) for a in msg.attachments],
            "embeds": msg.embeds,
            "components": msg.components,
            "reactions": reactions,
            "pinned": False,
            "type": 20 if msg.interaction_id else 0,
            "flags": msg.flags,
        }
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
            data["application_id"] = str(self.application_id)
        return data

    # ------------------------------------------------------------------ recording and waiting
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[], Any], within: float = 5.0, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value."""

        def check() -> Any:
            return predicate()

        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(check), within)
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {within}s waiting for {what or predicate!r}\n{self.dump()}"
                ) from None

    async def wait_for_request(
        self, predicate: Callable[[Request], bool], within: float = 5.0, *, since: int = 0
    ) -> Request:
        """The first recorded request (index >= ``since``) matching ``predicate``."""

        def find() -> Request | None:
            for req in self.requests[since:]:
                if req.status is not None and predicate(req):
                    return req
            return None

        return await self.wait_until(find, within, what="a matching request")

    def find_requests(self, method: str | None = None, contains: str = "") -> list[Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and contains in r.path
        ]

    async def interaction_response(self, interaction_id: int, within: float = 5.0) -> Interaction:
        """Wait for the interaction's callback; return the interaction (see ``callback_*``)."""
        inter = self.interactions[interaction_id]
        try:
            await asyncio.wait_for(inter.responded.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"interaction {interaction_id} ({inter.name}) got no callback in {within}s\n"
                + self.dump()
            ) from None
        return inter

    async def final_message(self, interaction_id: int, within: float = 10.0) -> Message:
        """The interaction's original message once it is no longer 'thinking' (after a defer)."""
        await self.interaction_response(interaction_id, within)
        inter = self.interactions[interaction_id]

        def done() -> Message | None:
            if inter.original_message_id is None:
                return None
            msg = self.messages[inter.original_message_id]
            return None if msg.loading else msg

        return await self.wait_until(done, within, what=f"final message of {inter.name}")

    def original_message(self, interaction_id: int) -> Message | None:
        inter = self.interactions[interaction_id]
        if inter.original_message_id is None:
            return None
        return self.messages[inter.original_message_id]

    async def wait_for_reactions(
        self,
        message_id: int,
        emojis: Iterable[str],
        user_id: int | None = None,
        within: float = 5.0,
    ) -> Message:
        """Wait until ``user_id`` (default: the bot) has reacted with every one of ``emojis``."""
        who = self.bot_user_id if user_id is None else user_id
        wanted = list(emojis)

        def ok() -> Message | None:
            msg = self.messages.get(message_id)
            if msg and all(who in msg.reactions.get(e, []) for e in wanted):
                return msg
            return None

        return await self.wait_until(ok, within, what=f"reactions {wanted} on {message_id}")

    async def wait_ready(self, within: float = 10.0) -> GatewaySession:
        """Wait until a bot has identified on the gateway (READY and GUILD_CREATE sent)."""
        return await self.wait_until(self.active_session, within, what="a gateway IDENTIFY")

    async def wait_disconnected(self, within: float = 10.0) -> None:
        """Wait until no gateway connection is open."""
        await self.wait_until(
            lambda: all(s.closed_at is not None for s in self.sessions),
            within,
            what="the gateway to disconnect",
        )

    def active_session(self) -> GatewaySession | None:
        for session in reversed(self.sessions):
            if session.identified and session.closed_at is None and not session.ws.closed:
                return session
        return None

    # ------------------------------------------------------------------ dump
    def dump(self, limit: int = 400) -> str:
        lines = [f"==== fake Discord on {self.base_url} ({len(self.requests)} requests) ===="]
        if self.errors:
            lines.append("-- fake errors --")
            lines += self.errors
        lines.append("-- gateway / events --")
        lines += self.log[-limit:]
        lines.append("-- requests --")
        if len(self.requests) > limit:
            lines.append(f"... {len(self.requests) - limit} earlier requests omitted")
        lines += [r.summary() for r in self.requests[-limit:]]
        lines.append("-- messages --")
        for msg in list(self.messages.values())[-limit:]:
            reacts = {e: u for e, u in msg.reactions.items() if u}
            lines.append(
                f"{msg.id} inter={msg.interaction_id} flags={msg.flags} "
                f"content={msg.content[:120]!r} files={[a.filename for a in msg.attachments]} "
                f"reactions={reacts}{' DELETED' if msg.deleted else ''}"
            )
        return "\n".join(lines)

    def _log(self, text: str) -> None:
        self.log.append(f"+{self.elapsed():7.3f}s {text}")

    # ------------------------------------------------------------------ gateway
    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        session = GatewaySession(id=secrets.token_hex(8), ws=ws, connected_at=self.elapsed())
        self.sessions.append(session)
        self._log(f"gateway {session.id} connected query={dict(request.query)}")
        try:
            await self._send(session, {"op": OP_HELLO, "d": {"heartbeat_interval": 41250}})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.ERROR:
                        break
                    continue
                try:
                    msg = json.loads(frame.data)
                except ValueError:
                    self.errors.append(f"gateway: bad frame {frame.data[:200]!r}")
                    continue
                await self._gateway_op(session, msg)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            session.closed_at = self.elapsed()
            session.close_code = ws.close_code
            self._log(f"gateway {session.id} closed code={ws.close_code}")
            await self._notify()
        return ws

    async def _send(self, session: GatewaySession, payload: dict[str, Any]) -> bool:
        async with session.lock:
            if session.ws.closed:
                return False
            if payload.get("op") == OP_DISPATCH:
                session.sequence += 1
                payload["s"] = session.sequence
                session.events_sent += 1
            frame = json.dumps(payload)
            self._before_frame(payload)
            try:
                await session.ws.send_str(frame)
            except (ConnectionResetError, RuntimeError):
                return False
            return True

    def _before_frame(self, payload: dict[str, Any]) -> None:
        """Hook called right before a gateway frame is written (the load benchmark times it)."""

    async def _gateway_op(self, session: GatewaySession, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        data = msg.get("d")
        if op == OP_HEARTBEAT:
            await self._send(session, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            if not isinstance(data, dict) or data.get("token") != self.token:
                self._log(f"gateway {session.id} IDENTIFY with a wrong token")
                await session.ws.close(code=4004, message=b"Authentication failed.")
                return
            session.intents = data.get("intents")
            self._log(f"gateway {session.id} IDENTIFY intents={session.intents}")
            await self._send(session, {"op": OP_DISPATCH, "t": "READY", "d": self._ready(session)})
            await self._send(
                session, {"op": OP_DISPATCH, "t": "GUILD_CREATE", "d": self.guild_payload()}
            )
            session.identified = True
            await self._notify()
        elif op == OP_RESUME:
            old = next((s for s in self.sessions if s.id == (data or {}).get("session_id")), None)
            if old is None or (data or {}).get("token") != self.token:
                self._log(f"gateway {session.id} RESUME refused")
                await self._send(session, {"op": OP_INVALID_SESSION, "d": False})
                return
            session.intents = old.intents
            session.sequence = old.sequence
            session.id = old.id
            session.identified = True
            self._log(f"gateway {session.id} RESUMED")
            await self._send(session, {"op": OP_DISPATCH, "t": "RESUMED", "d": {}})
            await self._notify()
        else:
            self._log(f"gateway {session.id} op {op} ignored")

    def _ready(self, session: GatewaySession) -> dict[str, Any]:
        user = self.user_payload(self.bot_user_id)
        user.update(bot=True, verified=True, mfa_enabled=False, flags=0, email=None)
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth_session_id_hash": "",
            "shard": [0, 1],
        }

    async def dispatch(self, event: str, data: dict[str, Any], intent: int | None = None) -> int:
        """Push a gateway event to every identified bot; return how many received it."""
        delivered = 0
        for session in list(self.sessions):
            if not session.identified or session.closed_at is not None:
                continue
            if intent is not None and not session.wants(intent):
                continue
            if await self._send(session, {"op": OP_DISPATCH, "t": event, "d": data}):
                delivered += 1
        self._log(f"dispatch {event} -> {delivered} session(s)")
        return delivered

    async def disconnect_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket from the server side (the client reconnects/resumes)."""
        for session in self.sessions:
            if session.closed_at is None and not session.ws.closed:
                await session.ws.close(code=code)

    # ------------------------------------------------------------------ user actions
    def add_user(self, user_id: int, name: str | None = None, *, bot: bool = False) -> int:
        if name:
            self.user_names[user_id] = name
        if bot:
            self.bot_users.add(user_id)
        return user_id

    def _command_schema(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        for scope in (guild_id, None):
            for cmd in self.commands.get(scope, []):
                if cmd.get("name") == name:
                    return cmd
        return None

    def _base_interaction(
        self, itype: int, user_id: int, data: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        iid = self.snowflake()
        token = f"itok{iid}{secrets.token_hex(12)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "channel": self.channel_payload(),
            "member": self.member_payload(user_id),
            "token": token,
            "version": 1,
            "app_permissions": BOT_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        payload.update(extra)
        return payload

    async def send_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        autocomplete: str | None = None,
    ) -> Interaction:
        """Push an ``INTERACTION_CREATE`` for ``/name`` with ``options`` (by option name).

        Option types come from the synced command when it is known (string otherwise).
        ``autocomplete=option`` sends an autocomplete interaction focused on that option.
        """
        options = options or {}
        schema = self._command_schema(name, self.guild_id)
        types = {o["name"]: o.get("type", 3) for o in (schema or {}).get("options", [])}
        data: dict[str, Any] = {"name": name, "type": 1, "options": []}
        if schema is not None:
            data["id"] = schema["id"]
            if schema.get("guild_id"):
                data["guild_id"] = schema["guild_id"]
        else:
            data["id"] = str(self.snowflake())
        resolved: dict[str, Any] = {}
        for key, value in options.items():
            otype = types.get(key, _guess_type(value))
            opt: dict[str, Any] = {"name": key, "type": otype}
            if otype == 6:
                uid = int(value)
                opt["value"] = str(uid)
                resolved.setdefault("users", {})[str(uid)] = self.user_payload(uid)
                member = self.member_payload(uid)
                member.pop("user")
                resolved.setdefault("members", {})[str(uid)] = member
            else:
                opt["value"] = value
            if autocomplete == key:
                opt["focused"] = True
            data["options"].append(opt)
        if resolved:
            data["resolved"] = resolved
        payload = self._base_interaction(4 if autocomplete else 2, user_id, data)
        return await self._push_interaction(payload, name, user_id)

    async def press_button(self, message_id: int, custom_id: str, *, user_id: int) -> Interaction:
        """Push a component interaction: ``user_id`` clicks button ``custom_id`` on a message."""
        msg = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._base_interaction(3, user_id, data, message=self.message_payload(msg))
        return await self._push_interaction(payload, f"button:{custom_id}", user_id, message_id)

    async def _push_interaction(
        self,
        payload: dict[str, Any],
        name: str,
        user_id: int,
        message_id: int | None = None,
    ) -> Interaction:
        inter = Interaction(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            name=name,
            user_id=user_id,
            channel_id=self.channel_id,
            guild_id=self.guild_id,
            payload=payload,
            sent_at=self.elapsed(),
            original_message_id=message_id,
        )
        self.interactions[inter.id] = inter
        self._interactions_by_token[inter.token] = inter
        delivered = await self.dispatch("INTERACTION_CREATE", payload)
        if not delivered:
            raise AssertionError(f"no bot connected to receive /{name}\n{self.dump()}")
        return inter

    async def user_reacts(self, message_id: int, user_id: int, emoji: str = "👍") -> bool:
        """``user_id`` reacts to a message: kept in its state, and pushed to a connected bot.

        Returns whether a bot received the event (False when none is connected, or when the
        user had already reacted with that emoji, which Discord does not dispatch again).
        """
        msg = self.messages.get(message_id)
        if msg is None:
            raise AssertionError(f"user_reacts: unknown message {message_id}\n{self.dump()}")
        users = msg.reactions.setdefault(emoji, [])
        if user_id in users:
            return False
        users.append(user_id)
        self._log(f"user {user_id} reacted {emoji} on {message_id}")
        await self._notify()
        return bool(await self._dispatch_reaction(msg, user_id, emoji))

    async def dispatch_reaction(self, message_id: int, user_id: int, emoji: str) -> int:
        """Push ``MESSAGE_REACTION_ADD`` without changing the state (a duplicate or an echo)."""
        return await self._dispatch_reaction(self.messages[message_id], user_id, emoji)

    async def _dispatch_reaction(self, msg: Message, user_id: int, emoji: str) -> int:
        data: dict[str, Any] = {
            "type": 0,
            "user_id": str(user_id),
            "channel_id": str(msg.channel_id),
            "message_id": str(msg.id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "message_author_id": msg.author["id"],
        }
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            data["member"] = self.member_payload(user_id)
        return await self.dispatch("MESSAGE_REACTION_ADD", data, INTENT_GUILD_MESSAGE_REACTIONS)

    def create_message(self, content: str, *, author_id: int | None = None) -> Message:
        """A plain channel message (by the bot unless ``author_id``), as if sent earlier."""
        msg = Message(
            id=self.snowflake(),
            channel_id=self.channel_id,
            guild_id=self.guild_id,
            author=self.user_payload(self.bot_user_id if author_id is None else author_id),
            content=content,
            created=self.elapsed(),
        )
        self.messages[msg.id] = msg
        return msg

    def reactions_of(self, message_id: int) -> dict[str, list[int]]:
        msg = self.messages.get(message_id)
        return {} if msg is None else {e: list(u) for e, u in msg.reactions.items() if u}

    # ------------------------------------------------------------------ HTTP plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        rec = Request(
            index=len(self.requests),
            time=self.elapsed(),
            method=request.method,
            path=path,
            query=dict(request.query),
            authorized=request.headers.get("Authorization") == f"Bot {self.token}",
        )
        self.requests.append(rec)
        request[_REC] = rec
        try:
            await self._read_body(request, rec)
            response = await handler(request)
        except web.HTTPException as exc:
            response = _error(exc.status, exc.reason)
        except Exception as exc:
            self.errors.append(f"{rec.method} {rec.path}: {type(exc).__name__}: {exc}")
            response = _error(400, f"fake Discord error: {type(exc).__name__}: {exc}")
        rec.status = response.status
        await self._notify()
        return response

    async def _read_body(self, request: web.Request, rec: Request) -> None:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                raw = await part.read(decode=False)  # type: ignore[union-attr]
                p = Part(
                    name=part.name or "",  # type: ignore[union-attr]
                    filename=part.filename,  # type: ignore[union-attr]
                    content_type=part.headers.get("Content-Type"),
                    data=bytes(raw),
                )
                if p.name == "payload_json":
                    p.json = rec.json = json.loads(p.data)
                rec.parts.append(p)
        elif request.can_read_body:
            text = await request.text()
            if text:
                try:
                    rec.json = json.loads(text)
                except ValueError:
                    rec.json = {"_raw": text[:500]}

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, "404: Not Found")

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        rec = request[_REC]
        parts = rec.path.strip("/").split("/")
        method = rec.method
        for pattern, verb, handler, needs_auth in self._route_table():
            if verb != method or len(pattern) != len(parts):
                continue
            args = []
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{"):
                    args.append(got)
                elif want != got:
                    break
            else:
                if needs_auth and not rec.authorized:
                    return _error(401, "401: Unauthorized")
                result = await handler(rec, *args)
                if isinstance(result, web.StreamResponse):
                    return result
                rec.response = result
                if result is None:
                    return web.Response(status=204)
                return _json_response(result)
        self.errors.append(f"unhandled route {method} {rec.path}")
        return _error(404, "404: Not Found")

    def _route_table(self) -> list[tuple[list[str], str, Any, bool]]:
        r = [
            ("users/@me", "GET", self._get_me, True),
            ("oauth2/applications/@me", "GET", self._get_app, True),
            ("gateway", "GET", self._get_gateway, False),
            ("gateway/bot", "GET", self._get_gateway_bot, True),
            ("applications/{a}/commands", "PUT", self._put_commands, True),
            ("applications/{a}/commands", "GET", self._get_commands, True),
            ("applications/{a}/guilds/{g}/commands", "PUT", self._put_guild_commands, True),
            ("applications/{a}/guilds/{g}/commands", "GET", self._get_guild_commands, True),
            ("interactions/{i}/{t}/callback", "POST", self._callback, False),
            ("webhooks/{a}/{t}/messages/{m}", "GET", self._get_webhook_message, False),
            ("webhooks/{a}/{t}/messages/{m}", "PATCH", self._edit_webhook_message, False),
            ("webhooks/{a}/{t}/messages/{m}", "DELETE", self._delete_webhook_message, False),
            ("webhooks/{a}/{t}", "POST", self._followup, False),
            ("channels/{c}/messages/{m}", "GET", self._get_message, True),
            ("channels/{c}/messages/{m}/reactions/{e}/@me", "PUT", self._add_own_reaction, True),
            ("channels/{c}/messages/{m}/reactions/{e}/@me", "DELETE", self._del_own_reaction, True),
            ("channels/{c}/messages/{m}/reactions/{e}", "GET", self._get_reactions, True),
        ]
        return [(p.split("/"), v, h, a) for p, v, h, a in r]

    # ------------------------------------------------------------------ REST handlers
    async def _get_me(self, rec: Request) -> Any:
        user = self.user_payload(self.bot_user_id)
        user.update(bot=True, verified=True, mfa_enabled=False, flags=0)
        return user

    async def _get_app(self, rec: Request) -> Any:
        return {
            "id": str(self.application_id),
            "name": "qtune",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user_payload(self.owner_id),
            "verify_key": "0" * 64,
            "team": None,
            "flags": 0,
            "interactions_endpoint_url": None,
            "summary": "",
        }

    async def _get_gateway(self, rec: Request) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, rec: Request) -> Any:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    def _store_commands(self, scope: int | None, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise ValueError("command sync body must be a JSON list")
        old = {c["name"]: c["id"] for c in self.commands.get(scope, [])}
        out = []
        for cmd in body:
            item = dict(cmd)
            item.setdefault("type", 1)
            item.setdefault("description", "")
            item["id"] = old.get(item["name"]) or str(self.snowflake())
            item["application_id"] = str(self.application_id)
            item["version"] = str(self.snowflake())
            if scope is not None:
                item["guild_id"] = str(scope)
            out.append(item)
        self.commands[scope] = out
        self._log(f"commands synced to {scope or 'global'}: {[c['name'] for c in out]}")
        return out

    async def _put_commands(self, rec: Request, app: str) -> Any:
        return self._store_commands(None, rec.json)

    async def _get_commands(self, rec: Request, app: str) -> Any:
        return self.commands.get(None, [])

    async def _put_guild_commands(self, rec: Request, app: str, guild: str) -> Any:
        return self._store_commands(int(guild), rec.json)

    async def _get_guild_commands(self, rec: Request, app: str, guild: str) -> Any:
        return self.commands.get(int(guild), [])

    def _new_message(
        self, inter: Interaction | None, data: dict[str, Any], rec: Request
    ) -> Message:
        msg = Message(
            id=self.snowflake(),
            channel_id=inter.channel_id if inter else self.channel_id,
            guild_id=inter.guild_id if inter else self.guild_id,
            author=self.user_payload(self.bot_user_id),
            interaction_id=inter.id if inter else None,
            webhook_id=self.application_id if inter else None,
            created=self.elapsed(),
        )
        self._apply_message_data(msg, data, rec, new=True)
        self.messages[msg.id] = msg
        return msg

    def _apply_message_data(
        self, msg: Message, data: dict[str, Any], rec: Request, *, new: bool = False
    ) -> None:
        if "content" in data:
            msg.content = data["content"] or ""
        if "embeds" in data:
            msg.embeds = data["embeds"] or []
        if "components" in data:
            msg.components = data["components"] or []
        if "flags" in data and data["flags"] is not None:
            keep = msg.flags & FLAG_EPHEMERAL
            msg.flags = (int(data["flags"]) & ~FLAG_LOADING) | keep
        files = {}
        for part in rec.files:
            # "files[3]" -> attachment id 3
            key = part.name[part.name.find("[") + 1 : -1] if "[" in part.name else part.name
            files[key] = part
        if "attachments" in data or files:
            keep_atts: list[Attachment] = []
            described = {str(a.get("id")): a for a in data.get("attachments") or []}
            if "attachments" in data:
                existing = {str(a.id): a for a in msg.attachments}
                keep_atts = [existing[k] for k in described if k in existing]
            elif not new:
                keep_atts = list(msg.attachments)
            for key, part in files.items():
                meta = described.get(key, {})
                keep_atts.append(
                    Attachment(
                        id=self.snowflake(),
                        filename=meta.get("filename") or part.filename or "file",
                        content_type=part.content_type,
                        data=part.data,
                        description=meta.get("description"),
                    )
                )
            msg.attachments = keep_atts
        if not new:
            msg.edits += 1

    def _interaction_for(self, iid: str, token: str) -> Interaction | None:
        inter = self._interactions_by_token.get(token)
        if inter is None or (iid and str(inter.id) != iid):
            return None
        return inter

    async def _callback(self, rec: Request, iid: str, token: str) -> Any:
        inter = self._interaction_for(iid, token)
        if inter is None:
            return _error(404, "Unknown interaction", 10062)
        if inter.callback is not None:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        inter.callback, inter.callback_type, inter.callback_at = rec, ctype, self.elapsed()
        message: Message | None = None
        if ctype == 4:
            message = self._new_message(inter, data, rec)
            inter.original_message_id = message.id
        elif ctype == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._new_message(inter, {}, rec)
            message.flags = flags
            inter.original_message_id = message.id
        elif ctype == 7 and inter.original_message_id is not None:
            message = self.messages[inter.original_message_id]
            self._apply_message_data(message, data, rec)
        elif ctype == 6 and inter.original_message_id is not None:
            message = self.messages[inter.original_message_id]
        self._log(f"callback type {ctype} for {inter.name} ({inter.id})")
        inter.responded.set()
        out: dict[str, Any] = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None and ctype in (4, 5, 7):
            out["resource"] = {"type": ctype, "message": self.message_payload(message)}
        return out

    def _webhook_target(self, app: str, token: str, mid: str) -> tuple[Interaction, Message]:
        inter = self._interaction_for("", token)
        if inter is None or app != str(self.application_id):
            raise _NotFound("Unknown Webhook", 10015)
        msg_id = inter.original_message_id if mid == "@original" else int(mid)
        msg = self.messages.get(msg_id) if msg_id is not None else None
        if msg is None or msg.deleted or msg.interaction_id not in (inter.id, None):
            raise _NotFound("Unknown Message", 10008)
        return inter, msg

    async def _get_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        try:
            _, msg = self._webhook_target(app, token, mid)
        except _NotFound as exc:
            return exc.response()
        return self.message_payload(msg)

    async def _edit_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        try:
            _, msg = self._webhook_target(app, token, mid)
        except _NotFound as exc:
            return exc.response()
        body = rec.json if isinstance(rec.json, dict) else {}
        self._apply_message_data(msg, body, rec)
        msg.flags &= ~FLAG_LOADING
        return self.message_payload(msg)

    async def _delete_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        try:
            _, msg = self._webhook_target(app, token, mid)
        except _NotFound as exc:
            return exc.response()
        msg.deleted = True
        return None

    async def _followup(self, rec: Request, app: str, token: str) -> Any:
        inter = self._interaction_for("", token)
        if inter is None or app != str(self.application_id):
            return _error(404, "Unknown Webhook", 10015)
        if inter.callback is None:
            return _error(404, "Unknown Webhook", 10015)
        body = rec.json if isinstance(rec.json, dict) else {}
        original = self.original_message(inter.id)
        if original is not None and original.loading and not inter.followup_ids:
            # Discord turns the first followup after a defer into the deferred message.
            self._apply_message_data(original, body, rec)
            original.flags &= ~FLAG_LOADING
            inter.followup_ids.append(original.id)
            return self.message_payload(original)
        msg = self._new_message(inter, body, rec)
        msg.flags = int(body.get("flags") or 0) & FLAG_EPHEMERAL
        inter.followup_ids.append(msg.id)
        return self.message_payload(msg)

    def _channel_message(self, channel: str, mid: str) -> Message:
        msg = self.messages.get(int(mid)) if mid.isdigit() else None
        if msg is None or msg.deleted or str(msg.channel_id) != channel:
            raise _NotFound("Unknown Message", 10008)
        if msg.ephemeral:
            raise _NotFound("Unknown Message", 10008)
        return msg

    async def _get_message(self, rec: Request, channel: str, mid: str) -> Any:
        try:
            return self.message_payload(self._channel_message(channel, mid))
        except _NotFound as exc:
            return exc.response()

    async def _add_own_reaction(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        try:
            msg = self._channel_message(channel, mid)
        except _NotFound as exc:
            return exc.response()
        users = msg.reactions.setdefault(emoji, [])
        if self.bot_user_id not in users:
            users.append(self.bot_user_id)
            if self.echo_own_reactions:
                # Discord echoes the bot's own reaction back to it.
                task = asyncio.get_running_loop().create_task(
                    self._dispatch_reaction(msg, self.bot_user_id, emoji)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return None

    async def _del_own_reaction(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        try:
            msg = self._channel_message(channel, mid)
        except _NotFound as exc:
            return exc.response()
        users = msg.reactions.get(emoji, [])
        if self.bot_user_id in users:
            users.remove(self.bot_user_id)
        return None

    async def _get_reactions(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        try:
            msg = self._channel_message(channel, mid)
        except _NotFound as exc:
            return exc.response()
        limit = max(1, min(100, int(rec.query.get("limit", "25"))))
        after = int(rec.query.get("after", "0"))
        if rec.query.get("type", "0") not in ("0", ""):
            return []  # no super (burst) reactions here
        users = sorted(u for u in msg.reactions.get(emoji, []) if u > after)[:limit]
        return [self.user_payload(u) for u in users]


class _NotFound(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def response(self) -> web.Response:
        return _error(404, str(self), self.code)


def _guess_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
