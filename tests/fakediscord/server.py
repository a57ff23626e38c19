"""The driver: start the fake Discord, act as its users, and wait for what the bot does.

``async with FakeDiscord() as fake:`` serves REST under ``/api/v10`` and the gateway at
``/gateway`` on 127.0.0.1 (plain JSON text frames, so no zlib is involved). The real
discord.py client talks to it unmodified. A test then:

- acts as users: :meth:`send_command`, :meth:`press_button`, :meth:`user_reacts`;
- waits for the bot: :meth:`interaction_response`, :meth:`final_message`,
  :meth:`wait_for_reactions`, :meth:`wait_ready`, :meth:`wait_until` ...; every wait wakes on
  the change it watches (a message, an interaction, a request), never on a timer;
- reads the state: :attr:`requests`, :attr:`messages`, :attr:`interactions`,
  :attr:`commands`, :attr:`sessions`, and :meth:`dump` for an assertion message.

A reaction made while no bot is connected is only kept in the state, as on Discord.
Guilds beyond the default one come from :meth:`add_guild`; a sharded client gets each
guild's events on its shard (see :mod:`tests.fakediscord.gateway`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from aiohttp import web

from tests.fakediscord import payloads
from tests.fakediscord.changes import ANY, Changes
from tests.fakediscord.gateway import Gateway
from tests.fakediscord.models import (
    API_PREFIX,
    GatewaySession,
    Guild,
    Interaction,
    Message,
    Request,
    World,
)
from tests.fakediscord.ratelimit import RateLimits
from tests.fakediscord.rest import Rest

OPTION_USER = 6


class WaitTimeout(AssertionError):
    """A driver wait ran out; the message (with the fake's dump) is built only when shown."""

    def __init__(self, fake: FakeDiscord, within: float, what: str) -> None:
        super().__init__(what)
        self.fake, self.within, self.what = fake, within, what

    def __str__(self) -> str:
        return f"timed out after {self.within}s waiting for {self.what}\n{self.fake.dump()}"


def guess_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


class FakeDiscord:
    """The fake server and its driver. ``async with FakeDiscord() as fake:`` starts it.

    ``rate_limits=RateLimits()`` makes the REST routes answer with Discord's rate-limit
    headers (and 429 beyond them); without it nothing is limited, which keeps tests fast.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        guild_id: int = 900_000_000_000_000_001,
        channel_id: int = 900_000_000_000_000_002,
        application_id: int = 900_000_000_000_000_003,
        bot_user_id: int | None = None,
        echo_own_reactions: bool = True,
        rate_limits: RateLimits | None = None,
    ) -> None:
        bot = bot_user_id or application_id
        self.world = World(
            token=token or "fake." + secrets.token_urlsafe(24),
            application_id=application_id,
            bot_user_id=bot,
            owner_id=900_000_000_000_000_004,
            guilds={guild_id: Guild(guild_id, "qtune test guild", [channel_id])},
            echo_own_reactions=echo_own_reactions,
            user_names={bot: "qtune-bot"},
            bot_users={bot},
        )
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.changes = Changes()
        self.gateway = Gateway(self.world, self.changes)
        self.rest = Rest(self.world, self.changes, self.gateway, rate_limits)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.rest.handle)
        app.router.add_route("*", "/{tail:.*}", self.rest.not_found)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.world.base_url = self.base_url
        self.gateway.url = self.gateway_url

    async def close(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ addresses and clock
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
        """Seconds since the fake was made: the clock of every recorded time."""
        return self.world.elapsed()

    def monotonic(self, elapsed: float) -> float:
        """A time from the fake's clock as ``time.monotonic()`` (for other processes' clocks)."""
        return self.world.started + elapsed

    # ------------------------------------------------------------------ state, read-only views
    @property
    def token(self) -> str:
        return self.world.token

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def bot_user_id(self) -> int:
        return self.world.bot_user_id

    @property
    def owner_id(self) -> int:
        return self.world.owner_id

    @property
    def requests(self) -> list[Request]:
        return self.world.requests

    @property
    def errors(self) -> list[str]:
        return self.world.errors

    @property
    def log(self) -> list[str]:
        return self.world.log

    @property
    def messages(self) -> dict[int, Message]:
        return self.world.messages

    @property
    def interactions(self) -> dict[int, Interaction]:
        return self.world.interactions

    @property
    def commands(self) -> dict[int | None, list[dict[str, Any]]]:
        return self.world.commands

    @property
    def sessions(self) -> list[GatewaySession]:
        return self.gateway.sessions

    @property
    def guilds(self) -> dict[int, Guild]:
        return self.world.guilds

    @property
    def member_permissions(self) -> dict[int, str]:
        return self.world.member_permissions

    @property
    def recommended_shards(self) -> int:
        """The ``shards`` that ``GET /gateway/bot`` answers (what AutoShardedBot starts)."""
        return self.rest.recommended_shards

    @recommended_shards.setter
    def recommended_shards(self, count: int) -> None:
        self.rest.recommended_shards = count

    def user_payload(self, user_id: int) -> dict[str, Any]:
        """A user object as Discord sends it (for hand-built payloads)."""
        return payloads.user(self.world, user_id)

    def member_payload(self, user_id: int) -> dict[str, Any]:
        """A guild member object as Discord sends it (for hand-built payloads)."""
        return payloads.member(self.world, user_id)

    # ------------------------------------------------------------------ building the world
    def add_user(self, user_id: int, name: str | None = None, *, bot: bool = False) -> int:
        if name:
            self.world.user_names[user_id] = name
        if bot:
            self.world.bot_users.add(user_id)
        return user_id

    def add_guild(
        self,
        guild_id: int | None = None,
        *,
        channels: int = 1,
        name: str | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """Another guild with ``channels`` text channels; a bot that identifies later sees it.

        ``shard=(id, count)`` picks an id that Discord routes to that shard.
        """
        if guild_id is None and shard is not None:
            guild_id = self.world.snowflake.on_shard(*shard)
        gid = guild_id or self.world.snowflake()
        guild = Guild(
            gid, name or f"guild {gid}", [self.world.snowflake() for _ in range(channels)]
        )
        self.world.guilds[gid] = guild
        return guild

    def add_channels(self, count: int, guild_id: int | None = None) -> list[int]:
        """More text channels in a guild (default: the default guild), before the bot connects."""
        guild = self.world.guilds[guild_id or self.guild_id]
        new = [self.world.snowflake() for _ in range(count)]
        guild.channel_ids.extend(new)
        return new

    def create_message(
        self, content: str, *, author_id: int | None = None, channel_id: int | None = None
    ) -> Message:
        """A plain channel message (by the bot unless ``author_id``), as if sent earlier."""
        world = self.world
        channel = channel_id or self.channel_id
        guild = world.channel_guild(channel)
        msg = Message(
            id=world.snowflake(),
            channel_id=channel,
            guild_id=guild.id if guild else None,
            author=payloads.user(world, world.bot_user_id if author_id is None else author_id),
            content=content,
            created=world.elapsed(),
        )
        world.messages[msg.id] = msg
        return msg

    # ------------------------------------------------------------------ waiting
    async def _wait(
        self, predicate: Callable[[], Any], within: float, key: Hashable, what: str
    ) -> Any:
        try:
            return await self.changes.wait_for(predicate, within, key)
        except TimeoutError:
            raise WaitTimeout(self, within, what) from None

    async def wait_until(
        self, predicate: Callable[[], Any], within: float = 5.0, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value."""
        return await self._wait(predicate, within, ANY, what or repr(predicate))

    async def wait_for_request(
        self, predicate: Callable[[Request], bool], within: float = 5.0, *, since: int = 0
    ) -> Request:
        """The first answered request (index >= ``since``) matching ``predicate``."""
        position = since

        def find() -> Request | None:
            nonlocal position
            requests = self.world.requests
            for index in range(position, len(requests)):
                req = requests[index]
                if req.status is None:
                    break  # still being handled: look again from here
                if predicate(req):
                    return req
                position = index + 1
            return None

        return await self._wait(find, within, "requests", "a matching request")

    def find_requests(self, method: str | None = None, contains: str = "") -> list[Request]:
        return [
            r
            for r in self.world.requests
            if (method is None or r.method == method) and contains in r.path
        ]

    async def interaction_response(self, interaction_id: int, within: float = 5.0) -> Interaction:
        """Wait for the interaction's callback; return the interaction (see ``callback_*``)."""
        inter = self.world.interactions[interaction_id]
        await self._wait(
            inter.responded.is_set,
            within,
            ("interaction", inter.id),
            f"a callback to interaction {interaction_id} ({inter.name})",
        )
        return inter

    async def final_message(self, interaction_id: int, within: float = 10.0) -> Message:
        """The interaction's original message once it is no longer 'thinking' (after a defer)."""
        await self.interaction_response(interaction_id, within)
        inter = self.world.interactions[interaction_id]

        def done() -> Message | None:
            msg = self.original_message(interaction_id)
            return None if msg is None or msg.loading else msg

        return await self._wait(
            done, within, ("interaction", inter.id), f"final message of {inter.name}"
        )

    def original_message(self, interaction_id: int) -> Message | None:
        inter = self.world.interactions[interaction_id]
        if inter.original_message_id is None:
            return None
        return self.world.messages[inter.original_message_id]

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
            msg = self.world.messages.get(message_id)
            return msg if msg is not None and msg.has_reactions(who, wanted) else None

        return await self._wait(
            ok, within, ("message", message_id), f"reactions {wanted} on {message_id}"
        )

    async def wait_ready(self, within: float = 10.0, shard_id: int | None = None) -> GatewaySession:
        """Wait until a bot (or that shard) identified on the gateway: READY and guilds sent."""
        return await self._wait(
            lambda: self.active_session(shard_id), within, "gateway", "a gateway IDENTIFY"
        )

    async def wait_disconnected(self, within: float = 10.0) -> None:
        """Wait until no gateway connection is open."""
        await self._wait(
            lambda: all(s.closed_at is not None for s in self.sessions),
            within,
            "gateway",
            "the gateway to disconnect",
        )

    def active_session(self, shard_id: int | None = None) -> GatewaySession | None:
        return self.gateway.active_session(shard_id)

    def intercept(
        self, method: str, template: str, hook: Callable[[Request], Awaitable[None]]
    ) -> None:
        """Await ``hook(request)`` before the fake handles each ``method template`` request.

        ``template`` names a route as the fake does, e.g.
        ``"channels/{c}/messages/{m}/reactions/{e}/@me"``: a hook can hold a request (a
        slow Discord) or note it. Unknown routes are refused, so a typo cannot pass silently.
        """
        key = (method.upper(), template.strip("/"))
        if key not in self.rest.templates():
            raise ValueError(f"the fake has no route {method} {template}")
        self.rest.hooks.setdefault(key, []).append(hook)

    # ------------------------------------------------------------------ the gateway, driven
    async def dispatch(self, event: str, data: dict[str, Any], intent: int | None = None) -> int:
        """Push a gateway event to the bots whose shard serves its guild; return how many."""
        return await self.gateway.dispatch(event, data, intent)

    async def disconnect_gateway(self, code: int = 4000, shard_id: int | None = None) -> None:
        """Close the bot's websocket(s) from the server side (the client reconnects/resumes)."""
        await self.gateway.disconnect(code, shard_id)

    # ------------------------------------------------------------------ user actions
    def _command_schema(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        for scope in (guild_id, None):
            for cmd in self.world.commands.get(scope, []):
                if cmd.get("name") == name:
                    return cmd
        return None

    def _where(self, guild_id: int | None, channel_id: int | None) -> tuple[Guild, int]:
        if channel_id is not None and guild_id is None:
            found = self.world.channel_guild(channel_id)
            if found is None:
                raise AssertionError(f"unknown channel {channel_id}")
            return found, channel_id
        guild = self.world.guilds[guild_id or self.guild_id]
        return guild, channel_id or guild.channel_id

    async def send_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        autocomplete: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> Interaction:
        """Push an ``INTERACTION_CREATE`` for ``/name`` with ``options`` (by option name).

        Option types come from the synced command when it is known (string otherwise).
        ``autocomplete=option`` sends an autocomplete interaction focused on that option.
        The command is used in the default guild and channel unless told otherwise.
        """
        guild, channel = self._where(guild_id, channel_id)
        schema = self._command_schema(name, guild.id)
        types = {o["name"]: o.get("type", 3) for o in (schema or {}).get("options", [])}
        data: dict[str, Any] = {"name": name, "type": 1, "options": []}
        if schema is not None:
            data["id"] = schema["id"]
            if schema.get("guild_id"):
                data["guild_id"] = schema["guild_id"]
        else:
            data["id"] = str(self.world.snowflake())
        resolved: dict[str, Any] = {}
        for key, value in (options or {}).items():
            otype = types.get(key, guess_option_type(value))
            opt: dict[str, Any] = {"name": key, "type": otype}
            if otype == OPTION_USER:
                uid = int(value)
                opt["value"] = str(uid)
                resolved.setdefault("users", {})[str(uid)] = payloads.user(self.world, uid)
                member = payloads.member(self.world, uid)
                member.pop("user")
                resolved.setdefault("members", {})[str(uid)] = member
            else:
                opt["value"] = value
            if autocomplete == key:
                opt["focused"] = True
            data["options"].append(opt)
        if resolved:
            data["resolved"] = resolved
        itype = 4 if autocomplete else 2
        payload = payloads.interaction(self.world, itype, user_id, data, guild, channel)
        return await self._push_interaction(payload, name, user_id)

    async def send_raw_command(
        self,
        name: str,
        options: list[dict[str, Any]],
        *,
        user_id: int,
        resolved: dict[str, Any] | None = None,
        dm: bool = False,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> Interaction:
        """``/name`` carrying exactly ``options`` (raw option dicts, as a buggy client may send).

        ``dm=True`` sends it as Discord does from a direct message: no guild, no member, a
        ``user`` and a DM channel (delivered to shard 0).
        """
        guild, channel = self._where(guild_id, channel_id)
        schema = self._command_schema(name, guild.id)
        assert schema is not None, f"/{name} was not synced\n{self.dump()}"
        data: dict[str, Any] = {"id": schema["id"], "name": name, "type": 1, "options": options}
        if schema.get("guild_id"):
            data["guild_id"] = schema["guild_id"]
        if resolved is not None:
            data["resolved"] = resolved
        payload = payloads.interaction(self.world, 2, user_id, data, guild, channel)
        if dm:
            for key in ("guild_id", "member", "guild_locale"):
                payload.pop(key, None)
            payload["user"] = payloads.user(self.world, user_id)
            payload["channel"] = {"id": payload["channel_id"], "type": 1}
            payload["context"] = 1
        return await self._push_interaction(payload, name, user_id)

    async def press_button(self, message_id: int, custom_id: str, *, user_id: int) -> Interaction:
        """Push a component interaction: ``user_id`` clicks button ``custom_id`` on a message."""
        msg = self.world.messages[message_id]
        guild, channel = self._where(msg.guild_id, msg.channel_id)
        data = {"custom_id": custom_id, "component_type": 2}
        payload = payloads.interaction(
            self.world,
            3,
            user_id,
            data,
            guild,
            channel,
            message=payloads.message(self.world, msg),
        )
        return await self._push_interaction(payload, f"button:{custom_id}", user_id, message_id)

    async def _push_interaction(
        self,
        payload: dict[str, Any],
        name: str,
        user_id: int,
        message_id: int | None = None,
    ) -> Interaction:
        world = self.world
        inter = Interaction(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            name=name,
            user_id=user_id,
            channel_id=int(payload["channel_id"]),
            guild_id=int(payload["guild_id"]) if "guild_id" in payload else None,
            payload=payload,
            sent_at=world.elapsed(),
            original_message_id=message_id,
        )
        world.interactions[inter.id] = inter
        world.interactions_by_token[inter.token] = inter
        delivered = await self.gateway.dispatch("INTERACTION_CREATE", payload)
        inter.written_at = world.elapsed()
        if not delivered:
            raise AssertionError(f"no bot connected to receive /{name}\n{self.dump()}")
        return inter

    async def user_reacts(self, message_id: int, user_id: int, emoji: str = "👍") -> bool:
        """``user_id`` reacts to a message: kept in its state, and pushed to a connected bot.

        Returns whether a bot received the event (False when none is connected, or when the
        user had already reacted with that emoji, which Discord does not dispatch again).
        """
        msg = self.world.messages.get(message_id)
        if msg is None:
            raise AssertionError(f"user_reacts: unknown message {message_id}\n{self.dump()}")
        users = msg.reactions.setdefault(emoji, [])
        if user_id in users:
            return False
        users.append(user_id)
        msg.reacted_at[(emoji, user_id)] = self.world.elapsed()
        self.world.note(f"user {user_id} reacted {emoji} on {message_id}")
        self.changes.notify(("message", message_id))
        return bool(await self.rest.dispatch_reaction(msg, user_id, emoji))

    async def dispatch_reaction(self, message_id: int, user_id: int, emoji: str) -> int:
        """Push ``MESSAGE_REACTION_ADD`` without changing the state (a duplicate or an echo)."""
        return await self.rest.dispatch_reaction(self.world.messages[message_id], user_id, emoji)

    def reactions_of(self, message_id: int) -> dict[str, list[int]]:
        msg = self.world.messages.get(message_id)
        return {} if msg is None else {e: list(u) for e, u in msg.reactions.items() if u}

    # ------------------------------------------------------------------ dump
    def dump(self, limit: int = 400) -> str:
        world = self.world
        lines = [f"==== fake Discord on {self.base_url} ({len(world.requests)} requests) ===="]
        if world.errors:
            lines.append("-- fake errors --")
            lines += world.errors
        lines.append("-- gateway / events --")
        lines += world.log[-limit:]
        lines.append("-- requests --")
        if len(world.requests) > limit:
            lines.append(f"... {len(world.requests) - limit} earlier requests omitted")
        lines += [r.summary() for r in world.requests[-limit:]]
        lines.append("-- messages --")
        for msg in list(world.messages.values())[-limit:]:
            reacts = {e: u for e, u in msg.reactions.items() if u}
            lines.append(
                f"{msg.id} inter={msg.interaction_id} flags={msg.flags} "
                f"content={msg.content[:120]!r} files={[a.filename for a in msg.attachments]} "
                f"reactions={reacts}{' DELETED' if msg.deleted else ''}"
            )
        return "\n".join(lines)
