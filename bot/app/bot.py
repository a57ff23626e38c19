"""The Discord bot: a ``commands.Bot`` wired to the service, plus its start-up and shutdown.

``build_bot(settings)`` makes a bot; ``await run(settings)`` runs one until SIGTERM/SIGINT
and returns the exit code. The REST base and the gateway come from the settings
(``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``), the same path a proxy would take.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.config import ConfigError, Settings, open_service, redact
from cogs.checks import check_interaction
from cogs.common import REACTIONS, Cooldowns, report_error

log = logging.getLogger("qtune.bot")

COG_EXTENSIONS: tuple[str, ...] = ("cogs.recommend", "cogs.table", "cogs.simulate", "cogs.reset")
SYNC_HASH_KEY = "app_commands_hash"
LOOP_LAG_KEY = "loop_lag_max_ms"
RECONCILE_MAX_AGE = 24 * 3600.0
SHUTDOWN_GRACE = 10.0
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


class QTuneTree(app_commands.CommandTree):
    """Every app-command error goes through one policy (see cogs.common.report_error)."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        await report_error(interaction, error)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Malformed payloads are answered in plain words before discord.py parses them."""
        return check_interaction(interaction)


class LoopLagMonitor:
    """Samples event-loop lag: how late a periodic ``sleep(interval)`` wakes up."""

    def __init__(self, interval: float, log_every: float = 10.0) -> None:
        self.interval = interval
        self.log_every = log_every
        self.max_lag = 0.0
        self.samples = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        window_max, window_start = 0.0, loop.time()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            self.samples += 1
            self.max_lag = max(self.max_lag, lag)
            window_max = max(window_max, lag)
            if loop.time() - window_start >= self.log_every:
                log.info(
                    "event loop lag: max %.1f ms in the last %.0f s (%.1f ms since start)",
                    window_max * 1000,
                    loop.time() - window_start,
                    self.max_lag * 1000,
                )
                window_max, window_start = 0.0, loop.time()


class QTuneBot(commands.Bot):
    """The qtune bot. ``service`` is injected or built from the settings in ``setup_hook``."""

    def __init__(self, settings: Settings, *, service: Any = None) -> None:
        apply_endpoints(settings)
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=make_intents(),
            help_command=None,
            tree_cls=QTuneTree,
            guild_ready_timeout=settings.guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.settings = settings
        self.service: Any = service
        self.storage: Any = None  # set when the bot opened the storage itself
        self.cooldowns = Cooldowns(settings.cooldown)
        self.failed_extensions: list[str] = []
        self.commands_synced: bool | None = None  # True synced, False unchanged, None not tried
        self.reconciled = asyncio.Event()
        self.loop_lag: LoopLagMonitor | None = None
        self._tasks: set[asyncio.Task] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._ready_count = 0
        self._shutting_down = False

    # ----------------------------------------------------------------- lifecycle
    async def setup_hook(self) -> None:
        if self.service is None:
            self.service, self.storage = await open_service(self.settings)
        for name in COG_EXTENSIONS:
            try:
                await self.load_extension(name)
            except Exception:
                self.failed_extensions.append(name)
                log.exception("extension %s failed to load; the others still load", name)
        await self.sync_commands()
        if self.settings.loop_lag_interval:
            self.loop_lag = LoopLagMonitor(self.settings.loop_lag_interval)
            self.spawn(self.loop_lag.run(), "qtune-loop-lag")
        # Never wait_until_ready() here: setup_hook runs before the gateway connects.
        self.spawn(self._reconcile_when_ready(), "qtune-reconcile")

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
        if self._ready_count > 1:  # a new session after a reconnect: catch up again
            self.spawn(self.reconcile_pending(), "qtune-reconcile")

    async def close(self) -> None:
        if self._shutting_down:
            await super().close()
            return
        self._shutting_down = True
        log.info("shutting down")
        if self.service is not None:
            self.service.cancel_simulations()
        # In-flight commands may still need REST (reactions, follow-ups): a short grace
        # while events still arrive, then the full grace once the gateway is closed.
        await self._wait_idle(SHUTDOWN_GRACE / 5)
        for task in list(self._tasks):
            task.cancel()
        await super().close()
        await self._wait_idle(SHUTDOWN_GRACE)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_storage()

    async def _close_storage(self) -> None:
        if self.loop_lag is not None and self.service is not None:
            log.info("event loop lag: max %.1f ms overall", self.loop_lag.max_lag * 1000)
            with contextlib.suppress(Exception):
                await self.service.set_meta(LOOP_LAG_KEY, f"{self.loop_lag.max_lag * 1000:.3f}")
        if self.storage is not None:
            storage, self.storage = self.storage, None
            try:
                await storage.close()
            except Exception:
                log.exception("closing the storage failed")
            else:
                log.info("storage closed")

    # ------------------------------------------------------------ bookkeeping
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """A background task that is kept alive, logged on failure and cancelled at close."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    @contextlib.asynccontextmanager
    async def activity(self) -> AsyncIterator[None]:
        """Mark work that must finish before the storage closes (a reward, a record)."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def _wait_idle(self, grace: float) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("%d operation(s) still running at shutdown", self._busy)

    # ----------------------------------------------------------- command sync
    def command_payload(self) -> tuple[discord.abc.Snowflake | None, list[dict[str, Any]]]:
        guild = discord.Object(id=self.settings.dev_guild) if self.settings.dev_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        commands_ = sorted(self.tree.get_commands(guild=guild), key=lambda c: c.name)
        return guild, [c.to_dict(self.tree) for c in commands_]

    def command_hash(self) -> str:
        guild, payload = self.command_payload()
        target = f"guild:{guild.id}" if guild is not None else "global"
        blob = json.dumps({"target": target, "commands": payload}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    async def sync_commands(self) -> bool:
        """Sync app commands when their definitions changed since the last sync."""
        guild, _ = self.command_payload()
        digest = self.command_hash()
        where = f"guild {guild.id}" if guild is not None else "all guilds (global)"
        if await self.service.get_meta(SYNC_HASH_KEY) == digest:
            log.info("app commands unchanged since the last sync; not syncing")
            self.commands_synced = False
            return False
        if self.failed_extensions:
            log.warning(
                "not syncing app commands: %s failed to load, and syncing now would remove "
                "their commands from Discord",
                ", ".join(self.failed_extensions),
            )
            return False
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error("syncing app commands to %s failed: %s", where, exc)
            return False
        await self.service.set_meta(SYNC_HASH_KEY, digest)
        self.commands_synced = True
        log.info("synced %d app command(s) to %s", len(synced), where)
        return True

    # ----------------------------------------------- reactions given while down
    async def _reconcile_when_ready(self) -> None:
        await self.wait_until_ready()
        await self.reconcile_pending()

    async def reconcile_pending(self) -> int:
        """Apply 👍/👎 that the requester gave while the bot was not listening."""
        try:
            pending = await self.service.pending(RECONCILE_MAX_AGE)
            applied = 0
            for rec in pending:
                if self.is_closed():
                    break
                try:
                    applied += await self._reconcile_one(rec)
                except (discord.NotFound, discord.Forbidden) as exc:
                    log.debug("cannot read reactions of message %s: %s", rec.message_id, exc)
                except discord.HTTPException as exc:
                    log.warning("reading reactions of message %s failed: %s", rec.message_id, exc)
            if pending:
                log.info(
                    "start-up catch-up: %d of %d unrewarded recommendation(s) had a reaction",
                    applied,
                    len(pending),
                )
            return applied
        finally:
            self.reconciled.set()

    async def _reconcile_one(self, rec: Any) -> bool:
        if rec.channel_id is None:
            return False
        for emoji, liked in REACTIONS.items():
            if await self._has_reacted(rec.channel_id, rec.message_id, emoji, rec.user_id):
                async with self.activity():
                    result = await self.service.feedback(rec.message_id, rec.user_id, liked)
                if result.applied:
                    log.info(
                        "applied %s given while offline by %s on %s",
                        emoji,
                        rec.user_id,
                        rec.message_id,
                    )
                return bool(result.applied)
        return False

    async def _has_reacted(self, channel_id: int, message_id: int, emoji: str, user_id: int):
        after: int | None = None
        while True:
            users = await self.http.get_reaction_users(
                channel_id, message_id, emoji, limit=100, after=after
            )
            if any(int(u["id"]) == user_id for u in users):
                return True
            if len(users) < 100:
                return False
            after = int(users[-1]["id"])


def build_bot(settings: Settings, *, service: Any = None) -> QTuneBot:
    """A bot for these settings; the service is built in ``setup_hook`` unless given."""
    return QTuneBot(settings, service=service)


class _TokenFilter(logging.Filter):
    """Defence in depth: no log record ever carries the token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = redact(message, self.token), None
        return True


_logging_ready = False


def _log_formatter(stream: Any) -> Any:
    """discord.py's colour formatter only on a terminal; plain lines when piped or in a file.

    discord.py also colours whenever it detects Docker, which put escape codes into
    journald and log files. ``discord.utils.MISSING`` lets discord.py pick its colours.
    """
    is_tty = getattr(stream, "isatty", None)
    if is_tty is not None and is_tty() and "NO_COLOR" not in os.environ:
        return discord.utils.MISSING
    return logging.Formatter(
        "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
    )


def configure_logging(settings: Settings) -> None:
    """discord.py's logging set-up on the root logger, once per process."""
    global _logging_ready
    if not _logging_ready:
        discord.utils.setup_logging(
            level=settings.log_level_number, root=True, formatter=_log_formatter(sys.stderr)
        )
        _logging_ready = True
    logging.getLogger().setLevel(settings.log_level_number)
    if settings.token:
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, _TokenFilter) for f in handler.filters):
                handler.addFilter(_TokenFilter(settings.token))


async def run(settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT (exit 0) or a fatal error."""
    token = settings.require_token()
    configure_logging(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():  # a second signal while closing: stop waiting
            log.warning("%s received again; exiting now", sig.name)
            os._exit(128 + sig.value)  # committed rewards are safe (SQLite WAL)
        received.append(sig.name)
        stop.set()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    bot = build_bot(settings)
    try:
        async with bot:
            runner = asyncio.create_task(bot.start(token, reconnect=True), name="qtune-bot")
            stopper = asyncio.create_task(stop.wait(), name="qtune-stop")
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                log.info("%s received; closing gracefully", received[0])
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
                await asyncio.sleep(0)  # let events dispatched during close run
                return 0
            stopper.cancel()
            runner.result()  # re-raises a start-up failure
            return 0
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN (401 Unauthorized)") from None
    except (OSError, aiohttp.ClientError, discord.HTTPException, discord.GatewayNotFound) as exc:
        log.debug("start-up failure", exc_info=exc)
        log.error("cannot connect to Discord: %s", redact(str(exc) or type(exc).__name__, token))
        return 1
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
