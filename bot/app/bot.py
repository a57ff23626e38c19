"""QTuneBot: a ``commands.Bot`` with its dependencies injected.

The bot is given a ready service (:mod:`bot.app.runner` builds it); it loads the cogs,
syncs the app commands when they changed, tracks work in flight and shuts down
gracefully. It holds no rule of its own and imports no cog: the cogs are extensions,
loaded by name. The REST base and the gateway come from the settings
(``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``), the same path a proxy would take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.app.busy import InFlight
from bot.app.cooldowns import Cooldowns
from bot.app.lag import LoopLagMonitor
from bot.app.registrations import warn_if_doubled
from bot.app.sync import sync_if_changed
from bot.config import Settings
from bot.service import QTuneService

log = logging.getLogger("qtune.bot")

COG_EXTENSIONS: tuple[str, ...] = (
    "cogs.tree",
    "cogs.recommend",
    "cogs.reactions",
    "cogs.table",
    "cogs.simulate",
    "cogs.reset",
    "cogs.help",
    "cogs.export",
    "cogs.stats",
)
LOOP_LAG_KEY = "loop_lag_max_ms"
SHUTDOWN_GRACE = 10.0
"""Seconds :meth:`QTuneBot.close` gives work in flight and the gateway, all stages together."""
GATEWAY_CLOSE_TIMEOUT = 5.0
LAG_SAVE_TIMEOUT = 2.0
CANCEL_WAIT = 1.0
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
)  # 117824


def apply_endpoints(settings: Settings) -> None:
    """Point discord.py's REST and gateway clients at the configured servers."""
    discord.http.Route.BASE = settings.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def make_intents() -> discord.Intents:
    """Only what the bot uses: guild structure and reactions. Nothing privileged."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    return intents


def drop_own_reaction_echoes(client: discord.Client) -> bool:
    """Drop Discord's echo of the bot's own reactions before discord.py parses it.

    Every suggestion gets 👍 and 👎 from the bot, and Discord sends both back: two of the
    three reaction events per interaction. Parsing one builds an emoji, a member and an
    event object and starts a task per listener, only for the listener to ignore it; this
    wraps the gateway's ``MESSAGE_REACTION_ADD`` parser to return at once instead. (The
    reactions cog still ignores the bot's own reactions, should this hook be missing.)
    ``parsers`` is discord.py's internal event table, stable across 2.x; without it this
    does nothing and returns False.
    """
    state = client._connection
    parsers = getattr(state, "parsers", None)
    parse = parsers.get("MESSAGE_REACTION_ADD") if isinstance(parsers, dict) else None
    if parsers is None or parse is None:
        return False

    def parse_reaction_add(data: dict[str, Any]) -> None:
        if state.self_id is not None and int(data.get("user_id", 0)) == state.self_id:
            return
        parse(data)

    parsers["MESSAGE_REACTION_ADD"] = parse_reaction_add
    return True


class QTuneBot(commands.Bot):
    """The qtune bot, around a service it is given (it never opens storage itself)."""

    def __init__(self, settings: Settings, *, service: QTuneService, **client: Any) -> None:
        apply_endpoints(settings)
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        super().__init__(
            **client,
            command_prefix=commands.when_mentioned,
            intents=make_intents(),
            help_command=None,
            guild_ready_timeout=settings.guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.settings = settings
        self.service = service
        self.cooldowns = Cooldowns(settings.cooldown)
        self.in_flight = InFlight()
        self.extensions_to_load: tuple[str, ...] = COG_EXTENSIONS
        self.failed_extensions: list[str] = []
        self.commands_synced: bool | None = None  # True synced, False unchanged, None not done
        self.loop_lag: LoopLagMonitor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready_count = 0
        self._shutting_down = False
        drop_own_reaction_echoes(self)

    # ----------------------------------------------------------------- lifecycle
    @property
    def shutting_down(self) -> bool:
        """True from the start of :meth:`close`: work that would wait or retry stops."""
        return self._shutting_down

    async def setup_hook(self) -> None:
        # Never wait_until_ready() here: setup_hook runs before the gateway connects.
        for name in self.extensions_to_load:
            try:
                await self.load_extension(name)
            except Exception:
                self.failed_extensions.append(name)
                log.exception("extension %s failed to load; the others still load", name)
        if self.settings.syncs_commands:
            self.commands_synced = await sync_if_changed(
                self.tree, self.service, self.settings.dev_guild, self.failed_extensions
            )
            await warn_if_doubled(self.tree, self.service, self.settings.dev_guild)
        else:
            log.info("not syncing app commands: the process running shard 0 does")
        if self.service.cpu is not None:
            # Warm the worker process now (off the loop), not at the first chart.
            self.spawn(self.service.cpu.start(), "qtune-worker-start")
        if self.settings.loop_lag_interval:
            self.loop_lag = LoopLagMonitor(self.settings.loop_lag_interval)
            self.spawn(self.loop_lag.run(), "qtune-loop-lag")

    async def on_ready(self) -> None:
        self._ready_count += 1
        user = self.user
        log.info(
            "connected as %s (id %s) in %d guild(s)",
            user,
            user.id if user else "?",
            len(self.guilds),
        )
        if self._ready_count == 1 and user is not None:
            url = discord.utils.oauth_url(
                self.application_id or user.id,
                permissions=INVITE_PERMISSIONS,
                scopes=("bot", "applications.commands"),
            )
            log.info("invite me with %s", url)

    async def close(self) -> None:
        """Stop simulations, let work in flight finish, close the gateway and HTTP.

        Bounded as a whole (:data:`SHUTDOWN_GRACE`, plus :data:`LAG_SAVE_TIMEOUT` for one
        last database write): a saturated bot has hundreds of commands in flight, and an
        unbounded stage (a gateway that does not answer the close, a task that outlives
        its cancellation) once kept it alive past its supervisor's 30 s. Work still
        running when the grace is over is left to Discord's record: a reaction whose
        reward was not stored is applied by the next start-up catch-up.
        """
        if self._shutting_down:
            await self._close_connections(GATEWAY_CLOSE_TIMEOUT)
            return
        self._shutting_down = True
        log.info("shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE

        def left() -> float:
            return max(0.0, deadline - loop.time())

        self.service.cancel_simulations()
        # In-flight commands may still need REST (reactions, follow-ups): a short grace
        # while events still arrive, then the rest of the grace once the gateway is closed.
        await self._wait_idle(min(SHUTDOWN_GRACE / 5, left()))
        for task in list(self._tasks):
            task.cancel()
        await self._close_connections(min(GATEWAY_CLOSE_TIMEOUT, left()))
        await self._wait_idle(left())
        if self.in_flight.count:
            # A saturated bot's backlog would otherwise run (and fail, HTTP being closed)
            # after the grace, one CPU-starved task after another, past the exit deadline.
            log.warning("cancelling %d operation(s) left after the grace", self.in_flight.cancel())
            await self.in_flight.wait_idle(CANCEL_WAIT)
        if self._tasks:
            _, stuck = await asyncio.wait(set(self._tasks), timeout=max(left(), 0.1))
            if stuck:
                log.warning("%d background task(s) did not stop at shutdown", len(stuck))
        try:
            await asyncio.wait_for(self._save_loop_lag(), LAG_SAVE_TIMEOUT)
        except TimeoutError:
            log.warning("the loop-lag figure was not saved: the database did not answer")

    async def _close_connections(self, within: float) -> None:
        """discord.py's close (gateway, then HTTP), at most ``within`` seconds; on timeout
        the HTTP session is closed directly, so no request outlives the shutdown."""
        try:
            await asyncio.wait_for(asyncio.shield(super().close()), max(within, 0.1))
        except TimeoutError:
            log.warning("the gateway did not close within %.0f s; closing HTTP anyway", within)
            with contextlib.suppress(Exception):
                await self.http.close()

    async def _wait_idle(self, grace: float) -> None:
        if not await self.in_flight.wait_idle(grace):
            log.warning("%d operation(s) still running at shutdown", self.in_flight.count)

    async def _save_loop_lag(self) -> None:
        if self.loop_lag is None:
            return
        log.info("event loop lag: max %.1f ms overall", self.loop_lag.max_lag * 1000)
        with contextlib.suppress(Exception):
            await self.service.set_meta(LOOP_LAG_KEY, f"{self.loop_lag.max_lag * 1000:.3f}")

    # ------------------------------------------------------------ bookkeeping
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task that is kept alive, logged on failure and cancelled at close."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("background task %s failed", task.get_name(), exc_info=exc)


class ShardedQTuneBot(QTuneBot, commands.AutoShardedBot):
    """The same bot on several gateway shards: ``QTUNE_SHARD_COUNT`` in all, this process
    running ``QTUNE_SHARD_IDS`` (all of them when unset). Processes share PostgreSQL."""

    def __init__(self, settings: Settings, *, service: QTuneService) -> None:
        ids = list(settings.shard_ids) if settings.shard_ids is not None else None
        super().__init__(settings, service=service, shard_count=settings.shard_count, shard_ids=ids)


def build_bot(settings: Settings, *, service: QTuneService) -> QTuneBot:
    """The bot for these settings: an ``AutoShardedBot`` when ``QTUNE_SHARD_COUNT`` is set."""
    if settings.sharded:
        return ShardedQTuneBot(settings, service=service)
    return QTuneBot(settings, service=service)
