"""The REST API under ``/api/v10``: login, command sync, interactions, webhooks, reactions.

Every request is recorded (:class:`Request`) before it is handled. The fake never answers
5xx: a handler error becomes a 400 and is kept in ``world.errors``, because discord.py
retries 5xx with sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakediscord import payloads
from tests.fakediscord.changes import Changes
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.models import (
    API_PREFIX,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTENT_DIRECT_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    REQUEST_KEY,
    Attachment,
    Interaction,
    Message,
    Part,
    Request,
    World,
)
from tests.fakediscord.ratelimit import RateLimits

Handler = Callable[..., Awaitable[Any]]
Hook = Callable[[Request], Awaitable[None]]


def json_response(obj: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim and treats
    # anything else (aiohttp's "; charset=utf-8" included) as text.
    return web.Response(
        body=json.dumps(obj).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def error(status: int, message: str, code: int = 0) -> web.Response:
    return json_response({"message": message, "code": code}, status=status)


class NotFound(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def response(self) -> web.Response:
        return error(404, str(self), self.code)


async def read_body(request: web.Request, rec: Request) -> None:
    """Parse a JSON or multipart body into ``rec.json`` and ``rec.parts``."""
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


def apply_message_data(
    world: World, msg: Message, data: dict[str, Any], rec: Request, *, new: bool = False
) -> None:
    """Apply a create/edit body (content, embeds, components, flags, attachments) to ``msg``."""
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
        kept: list[Attachment] = []
        described = {str(a.get("id")): a for a in data.get("attachments") or []}
        if "attachments" in data:
            existing = {str(a.id): a for a in msg.attachments}
            kept = [existing[k] for k in described if k in existing]
        elif not new:
            kept = list(msg.attachments)
        for key, part in files.items():
            meta = described.get(key, {})
            kept.append(
                Attachment(
                    id=world.snowflake(),
                    filename=meta.get("filename") or part.filename or "file",
                    content_type=part.content_type,
                    data=part.data,
                    description=meta.get("description"),
                )
            )
        msg.attachments = kept
    if not new:
        msg.edits += 1


class Rest:
    """The REST routes, rate-limited as on Discord when given ``rate_limits``.

    ``recommended_shards`` is what ``GET /gateway/bot`` answers.
    """

    def __init__(
        self,
        world: World,
        changes: Changes,
        gateway: Gateway,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.world = world
        self.changes = changes
        self.gateway = gateway
        self.rate_limits = rate_limits
        self.recommended_shards = 1
        # (method, route template) -> awaited before the handler (see FakeDiscord.intercept)
        self.hooks: dict[tuple[str, str], list[Hook]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.routes = self._route_table()

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        world = self.world
        rec = Request(
            index=len(world.requests),
            time=world.elapsed(),
            method=request.method,
            path=path,
            query=dict(request.query),
            authorized=request.headers.get("Authorization") == f"Bot {world.token}",
        )
        world.requests.append(rec)
        request[REQUEST_KEY] = rec
        try:
            await read_body(request, rec)
            response = await handler(request)
        except web.HTTPException as exc:
            response = error(exc.status, exc.reason)
        except Exception as exc:
            world.errors.append(f"{rec.method} {rec.path}: {type(exc).__name__}: {exc}")
            response = error(400, f"fake Discord error: {type(exc).__name__}: {exc}")
        rec.status = response.status
        rec.headers = dict(response.headers)
        self.changes.notify("requests")
        return response

    async def not_found(self, request: web.Request) -> web.Response:
        return error(404, "404: Not Found")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rec = request[REQUEST_KEY]
        parts = rec.path.strip("/").split("/")
        for template, pattern, verb, handler, needs_auth in self.routes:
            if verb != rec.method or len(pattern) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                if needs_auth and not rec.authorized:
                    return error(401, "401: Unauthorized")
                headers: dict[str, str] = {}
                if self.rate_limits is not None:
                    headers, refused = self.rate_limits.check(f"{verb} {template}", params)
                    if refused is not None:
                        return refused
                for hook in self.hooks.get((verb, template), ()):
                    await hook(rec)
                response = await self.respond(rec, handler, list(params.values()))
                response.headers.update(headers)
                return response
        self.world.errors.append(f"unhandled route {rec.method} {rec.path}")
        return error(404, "404: Not Found")

    async def respond(self, rec: Request, handler: Handler, args: list[str]) -> web.Response:
        try:
            result = await handler(rec, *args)
        except NotFound as exc:
            return exc.response()
        if isinstance(result, web.Response):
            return result
        rec.response = result
        if result is None:
            return web.Response(status=204)
        return json_response(result)

    def templates(self) -> set[tuple[str, str]]:
        return {(verb, template) for template, _, verb, _, _ in self.routes}

    def _route_table(self) -> list[tuple[str, list[str], str, Handler, bool]]:
        r: list[tuple[str, str, Handler, bool]] = [
            ("users/@me", "GET", self.get_me, True),
            ("oauth2/applications/@me", "GET", self.get_app, True),
            ("gateway", "GET", self.get_gateway, False),
            ("gateway/bot", "GET", self.get_gateway_bot, True),
            ("applications/{a}/commands", "PUT", self.put_commands, True),
            ("applications/{a}/commands", "GET", self.get_commands, True),
            ("applications/{a}/guilds/{g}/commands", "PUT", self.put_guild_commands, True),
            ("applications/{a}/guilds/{g}/commands", "GET", self.get_guild_commands, True),
            ("interactions/{i}/{t}/callback", "POST", self.callback, False),
            ("webhooks/{a}/{t}/messages/{m}", "GET", self.get_webhook_message, False),
            ("webhooks/{a}/{t}/messages/{m}", "PATCH", self.edit_webhook_message, False),
            ("webhooks/{a}/{t}/messages/{m}", "DELETE", self.delete_webhook_message, False),
            ("webhooks/{a}/{t}", "POST", self.followup, False),
            ("channels/{c}/messages/{m}", "GET", self.get_message, True),
            ("channels/{c}/messages/{m}/reactions/{e}/@me", "PUT", self.add_own_reaction, True),
            ("channels/{c}/messages/{m}/reactions/{e}/@me", "DELETE", self.del_own_reaction, True),
            ("channels/{c}/messages/{m}/reactions/{e}", "GET", self.get_reactions, True),
        ]
        return [(p, p.split("/"), v, h, a) for p, v, h, a in r]

    # ------------------------------------------------------------------ login and sync
    async def get_me(self, rec: Request) -> Any:
        return payloads.bot_user(self.world)

    async def get_app(self, rec: Request) -> Any:
        return payloads.application(self.world)

    async def get_gateway(self, rec: Request) -> Any:
        return {"url": self.gateway.url}

    async def get_gateway_bot(self, rec: Request) -> Any:
        return {
            "url": self.gateway.url,
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    def store_commands(self, scope: int | None, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise ValueError("command sync body must be a JSON list")
        world = self.world
        old = {c["name"]: c["id"] for c in world.commands.get(scope, [])}
        out = []
        for cmd in body:
            item = dict(cmd)
            item.setdefault("type", 1)
            item.setdefault("description", "")
            item["id"] = old.get(item["name"]) or str(world.snowflake())
            item["application_id"] = str(world.application_id)
            item["version"] = str(world.snowflake())
            if scope is not None:
                item["guild_id"] = str(scope)
            out.append(item)
        world.commands[scope] = out
        world.note(f"commands synced to {scope or 'global'}: {[c['name'] for c in out]}")
        return out

    async def put_commands(self, rec: Request, app: str) -> Any:
        return self.store_commands(None, rec.json)

    async def get_commands(self, rec: Request, app: str) -> Any:
        return self.world.commands.get(None, [])

    async def put_guild_commands(self, rec: Request, app: str, guild: str) -> Any:
        return self.store_commands(int(guild), rec.json)

    async def get_guild_commands(self, rec: Request, app: str, guild: str) -> Any:
        return self.world.commands.get(int(guild), [])

    # ------------------------------------------------------------------ interactions
    def new_message(self, inter: Interaction, data: dict[str, Any], rec: Request) -> Message:
        world = self.world
        msg = Message(
            id=world.snowflake(),
            channel_id=inter.channel_id,
            guild_id=inter.guild_id,
            author=payloads.user(world, world.bot_user_id),
            interaction_id=inter.id,
            webhook_id=world.application_id,
            created=world.elapsed(),
        )
        apply_message_data(world, msg, data, rec, new=True)
        world.messages[msg.id] = msg
        return msg

    async def callback(self, rec: Request, iid: str, token: str) -> Any:
        inter = self.world.interaction_for(token, iid)
        if inter is None:
            return error(404, "Unknown interaction", 10062)
        if inter.callback is not None:
            return error(400, "Interaction has already been acknowledged.", 40060)
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        inter.callback, inter.callback_type, inter.callback_at = rec, ctype, self.world.elapsed()
        message: Message | None = None
        if ctype == 4:
            message = self.new_message(inter, data, rec)
            inter.original_message_id = message.id
        elif ctype == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self.new_message(inter, {}, rec)
            message.flags = flags
            inter.original_message_id = message.id
        elif ctype == 7 and inter.original_message_id is not None:
            message = self.world.messages[inter.original_message_id]
            apply_message_data(self.world, message, data, rec)
        elif ctype == 6 and inter.original_message_id is not None:
            message = self.world.messages[inter.original_message_id]
        self.world.note(f"callback type {ctype} for {inter.name} ({inter.id})")
        inter.responded.set()
        self.changes.notify(("interaction", inter.id))
        if message is not None:
            self.changes.notify(("message", message.id))
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
            out["resource"] = {"type": ctype, "message": payloads.message(self.world, message)}
        return out

    def webhook_target(self, app: str, token: str, mid: str) -> tuple[Interaction, Message]:
        inter = self.world.interaction_for(token)
        if inter is None or app != str(self.world.application_id):
            raise NotFound("Unknown Webhook", 10015)
        msg_id = inter.original_message_id if mid == "@original" else int(mid)
        msg = self.world.messages.get(msg_id) if msg_id is not None else None
        if msg is None or msg.deleted or msg.interaction_id not in (inter.id, None):
            raise NotFound("Unknown Message", 10008)
        return inter, msg

    def changed(self, inter: Interaction, msg: Message) -> None:
        self.changes.notify(("interaction", inter.id), ("message", msg.id))

    async def get_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        _, msg = self.webhook_target(app, token, mid)
        return payloads.message(self.world, msg)

    async def edit_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        inter, msg = self.webhook_target(app, token, mid)
        body = rec.json if isinstance(rec.json, dict) else {}
        apply_message_data(self.world, msg, body, rec)
        msg.flags &= ~FLAG_LOADING
        self.changed(inter, msg)
        return payloads.message(self.world, msg)

    async def delete_webhook_message(self, rec: Request, app: str, token: str, mid: str) -> Any:
        inter, msg = self.webhook_target(app, token, mid)
        msg.deleted = True
        self.changed(inter, msg)
        return None

    async def followup(self, rec: Request, app: str, token: str) -> Any:
        world = self.world
        inter = world.interaction_for(token)
        if inter is None or app != str(world.application_id) or inter.callback is None:
            return error(404, "Unknown Webhook", 10015)
        body = rec.json if isinstance(rec.json, dict) else {}
        oid = inter.original_message_id
        original = world.messages.get(oid) if oid is not None else None
        if original is not None and original.loading and not inter.followup_ids:
            # Discord turns the first followup after a defer into the deferred message.
            apply_message_data(world, original, body, rec)
            original.flags &= ~FLAG_LOADING
            inter.followup_ids.append(original.id)
            self.changed(inter, original)
            return payloads.message(world, original)
        msg = self.new_message(inter, body, rec)
        msg.flags = int(body.get("flags") or 0) & FLAG_EPHEMERAL
        inter.followup_ids.append(msg.id)
        self.changed(inter, msg)
        return payloads.message(world, msg)

    # ------------------------------------------------------------------ messages and reactions
    def channel_message(self, channel: str, mid: str) -> Message:
        msg = self.world.messages.get(int(mid)) if mid.isdigit() else None
        if msg is None or msg.deleted or str(msg.channel_id) != channel or msg.ephemeral:
            raise NotFound("Unknown Message", 10008)
        return msg

    async def get_message(self, rec: Request, channel: str, mid: str) -> Any:
        return payloads.message(self.world, self.channel_message(channel, mid))

    async def add_own_reaction(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        msg = self.channel_message(channel, mid)
        me = self.world.bot_user_id
        users = msg.reactions.setdefault(emoji, [])
        if me not in users:
            users.append(me)
            msg.reacted_at[(emoji, me)] = rec.time
            self.changes.notify(("message", msg.id))
            if self.world.echo_own_reactions:
                # Discord echoes the bot's own reaction back to it.
                task = asyncio.get_running_loop().create_task(
                    self.dispatch_reaction(msg, me, emoji)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return None

    async def del_own_reaction(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        msg = self.channel_message(channel, mid)
        users = msg.reactions.get(emoji, [])
        if self.world.bot_user_id in users:
            users.remove(self.world.bot_user_id)
            self.changes.notify(("message", msg.id))
        return None

    async def get_reactions(self, rec: Request, channel: str, mid: str, emoji: str) -> Any:
        msg = self.channel_message(channel, mid)
        limit = max(1, min(100, int(rec.query.get("limit", "25"))))
        after = int(rec.query.get("after", "0"))
        if rec.query.get("type", "0") not in ("0", ""):
            return []  # no super (burst) reactions here
        users = sorted(u for u in msg.reactions.get(emoji, []) if u > after)[:limit]
        return [payloads.user(self.world, u) for u in users]

    async def dispatch_reaction(self, msg: Message, user_id: int, emoji: str) -> int:
        """Push ``MESSAGE_REACTION_ADD``; the time it was written is kept on the message."""
        data = payloads.reaction_add(self.world, msg, user_id, emoji)
        intent = (
            INTENT_DIRECT_MESSAGE_REACTIONS
            if msg.guild_id is None
            else INTENT_GUILD_MESSAGE_REACTIONS
        )
        delivered = await self.gateway.dispatch("MESSAGE_REACTION_ADD", data, intent)
        msg.dispatched_at.setdefault((emoji, user_id), self.world.elapsed())
        return delivered
