"""The gateway websocket: HELLO, heartbeats, IDENTIFY (with shards), RESUME, and dispatches.

Sharding as Discord does it (GUIDE §6): IDENTIFY carries ``shard: [id, count]`` (absent
means ``[0, 1]``); an invalid pair closes the socket with 4010. READY echoes the pair and
lists only the guilds of that shard, and only those get a GUILD_CREATE. A guild's events go
to the shard ``(guild_id >> 22) % count``; events without a guild (DMs) go to shard 0. A
RESUME takes over its old session, shard included.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakediscord import payloads
from tests.fakediscord.changes import Changes
from tests.fakediscord.models import (
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_INVALID_SHARD,
    OP_DISPATCH,
    OP_HEARTBEAT,
    OP_HEARTBEAT_ACK,
    OP_HELLO,
    OP_IDENTIFY,
    OP_INVALID_SESSION,
    OP_RESUME,
    GatewaySession,
    Guild,
    World,
    shard_of,
)

HEARTBEAT_INTERVAL_MS = 41_250


def parse_shard(value: Any) -> tuple[int, int] | None:
    """``[id, count]`` from an IDENTIFY, or None when it is not a valid pair."""
    if value is None:
        return (0, 1)
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    shard_id, count = value
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        return None
    if count < 1 or not 0 <= shard_id < count:
        return None
    return (shard_id, count)


class Gateway:
    """Every websocket session the fake has seen, and the routing of events to them."""

    def __init__(self, world: World, changes: Changes) -> None:
        self.world = world
        self.changes = changes
        self.sessions: list[GatewaySession] = []
        self.url = ""

    # ------------------------------------------------------------------ connection
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        session = GatewaySession(id=secrets.token_hex(8), ws=ws, connected_at=self.world.elapsed())
        self.sessions.append(session)
        self.world.note(f"gateway {session.id} connected query={dict(request.query)}")
        try:
            await self.send(
                session, {"op": OP_HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
            )
            async for frame in ws:
                if frame.type == WSMsgType.ERROR:
                    break
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    msg = json.loads(frame.data)
                except ValueError:
                    self.world.errors.append(f"gateway: bad frame {frame.data[:200]!r}")
                    continue
                await self.on_op(session, msg)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            session.closed_at = self.world.elapsed()
            session.close_code = ws.close_code
            self.world.note(f"gateway {session.id} closed code={ws.close_code}")
            self.changes.notify("gateway")
        return ws

    async def send(self, session: GatewaySession, payload: dict[str, Any]) -> bool:
        async with session.lock:
            if session.ws.closed:
                return False
            if payload.get("op") == OP_DISPATCH:
                session.sequence += 1
                payload["s"] = session.sequence
                session.events_sent += 1
            try:
                await session.ws.send_str(json.dumps(payload))
            except (ConnectionResetError, RuntimeError):
                return False
            return True

    async def on_op(self, session: GatewaySession, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        data = msg.get("d")
        if op == OP_HEARTBEAT:
            await self.send(session, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self.identify(session, data if isinstance(data, dict) else {})
        elif op == OP_RESUME:
            await self.resume(session, data if isinstance(data, dict) else {})
        else:
            self.world.note(f"gateway {session.id} op {op} ignored")

    async def identify(self, session: GatewaySession, data: dict[str, Any]) -> None:
        if data.get("token") != self.world.token:
            self.world.note(f"gateway {session.id} IDENTIFY with a wrong token")
            await session.ws.close(
                code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed."
            )
            return
        shard = parse_shard(data.get("shard"))
        if shard is None:
            self.world.note(f"gateway {session.id} IDENTIFY with invalid shard {data.get('shard')}")
            await session.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        session.intents = data.get("intents")
        session.shard = shard
        self.world.note(
            f"gateway {session.id} IDENTIFY shard={list(shard)} intents={session.intents}"
        )
        guilds = self.guilds_of(shard)
        session.guild_ids = [g.id for g in guilds]
        ready = payloads.ready(self.world, session, guilds, self.url)
        await self.send(session, {"op": OP_DISPATCH, "t": "READY", "d": ready})
        for guild in guilds:
            create = payloads.guild_create(self.world, guild)
            await self.send(session, {"op": OP_DISPATCH, "t": "GUILD_CREATE", "d": create})
        session.identified = True
        self.changes.notify("gateway")

    async def resume(self, session: GatewaySession, data: dict[str, Any]) -> None:
        old = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if old is None or old is session or data.get("token") != self.world.token:
            self.world.note(f"gateway {session.id} RESUME refused")
            await self.send(session, {"op": OP_INVALID_SESSION, "d": False})
            return
        session.intents = old.intents
        session.shard = old.shard
        session.guild_ids = old.guild_ids
        session.sequence = old.sequence
        session.id = old.id
        session.identified = True
        self.world.note(f"gateway {session.id} RESUMED shard={list(session.shard)}")
        await self.send(session, {"op": OP_DISPATCH, "t": "RESUMED", "d": {}})
        self.changes.notify("gateway")

    def guilds_of(self, shard: tuple[int, int]) -> list[Guild]:
        shard_id, count = shard
        return [g for g in self.world.guilds.values() if shard_of(g.id, count) == shard_id]

    # ------------------------------------------------------------------ events
    async def dispatch(self, event: str, data: dict[str, Any], intent: int | None = None) -> int:
        """Push an event to the open sessions whose shard serves its guild; return how many."""
        raw_guild = data.get("guild_id")
        guild_id = int(raw_guild) if raw_guild is not None else None
        delivered = 0
        for session in list(self.sessions):
            if not session.open or not session.serves(guild_id):
                continue
            if intent is not None and not session.wants(intent):
                continue
            if await self.send(session, {"op": OP_DISPATCH, "t": event, "d": data}):
                delivered += 1
        self.world.note(f"dispatch {event} -> {delivered} session(s)")
        return delivered

    async def disconnect(self, code: int = 4000, shard_id: int | None = None) -> None:
        """Close open websockets (of one shard, or all) from the server side."""
        for session in self.sessions:
            if shard_id is not None and session.shard[0] != shard_id:
                continue
            if session.closed_at is None and not session.ws.closed:
                await session.ws.close(code=code)

    async def close_all(self) -> None:
        for session in self.sessions:
            if not session.ws.closed:
                await session.ws.close(code=1001)

    def active_session(self, shard_id: int | None = None) -> GatewaySession | None:
        for session in reversed(self.sessions):
            if session.open and (shard_id is None or session.shard[0] == shard_id):
                return session
        return None
