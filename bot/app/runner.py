"""The launcher (RoboDanny's ``launcher.py`` role): build the service and the bot, run it.

``await run(settings)`` opens the storage and builds the service *before* anything
reaches Discord (a bad database ends as one line and exit 2, with no Discord traffic),
injects it into a :class:`QTuneBot`, runs the bot until SIGTERM/SIGINT and returns the
exit code: 0 after a graceful shutdown, 1 when Discord cannot be reached. The storage is
closed last, after the bot has let its work in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable

import aiohttp
import discord

from bot.app import heap
from bot.app.bot import QTuneBot, build_bot
from bot.app.dblock import DatabaseLock
from bot.app.logs import configure_logging
from bot.config import ConfigError, Settings, open_service, redact
from storage.base import Storage

log = logging.getLogger("qtune.bot")


@contextlib.asynccontextmanager
async def open_bot(settings: Settings, *, cpu: bool = True) -> AsyncIterator[QTuneBot]:
    """A bot with its service; the bot is closed, then the storage, when the block ends."""
    service, storage = await open_service(settings, cpu=cpu)
    lock = None
    try:
        # One bot process per SQLite file; a cluster shares PostgreSQL instead.
        lock = None if settings.db_url else DatabaseLock.take(settings.db_path)
        bot = build_bot(settings, service=service)
        try:
            yield bot
        finally:
            await bot.close()
    finally:
        await close_storage(storage)
        if lock is not None:
            lock.release()
        if service.cpu is not None and not await asyncio.to_thread(
            service.cpu.join, WORKER_JOIN_TIMEOUT
        ):
            log.warning("the worker pool did not stop within %.0f s", WORKER_JOIN_TIMEOUT)


WORKER_JOIN_TIMEOUT = 3.0
"""Seconds the launcher waits, off the loop, for the worker pool's own thread to end."""
STORAGE_CLOSE_TIMEOUT = 8.0
"""Seconds the storage gets to commit what is queued at shutdown (the whole shutdown stays
under :data:`EXIT_DEADLINE`)."""
EXIT_DEADLINE = 25.0
"""Seconds after SIGTERM/SIGINT after which the process exits whatever still runs: under
the 30 s a supervisor (systemd's default, the load benchmark) waits before SIGKILL."""


async def close_storage(storage: Storage, within: float = STORAGE_CLOSE_TIMEOUT) -> None:
    """Close the storage; a failure is logged, never raised (the bot is stopping anyway).

    Bounded: a database that does not answer (locked by another process, a PostgreSQL
    server gone) must not keep the process alive. What was not committed then is what the
    next start-up catch-up reads back from Discord.
    """
    try:
        await asyncio.wait_for(storage.close(), within)
    except TimeoutError:
        log.warning("the storage did not close within %.0f s; leaving it", within)
    except Exception:
        log.exception("closing the storage failed")
    else:
        log.info("storage closed")


class StopSignals:
    """SIGTERM/SIGINT set ``stop``; a second one while closing exits at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, watchdog: bool = False) -> None:
        self.loop = loop
        self.uses_watchdog = watchdog  # the process's own main: bound its exit too
        self.stop = asyncio.Event()
        self.received: str | None = None
        self._installed: list[signal.Signals] = []
        self.watchdog: threading.Timer | None = None

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop.is_set():  # a second signal while closing: stop waiting
            log.warning("%s received again; exiting now", sig.name)
            os._exit(128 + sig.value)  # committed rewards are safe (SQLite WAL)
        self.received = sig.name
        self.stop.set()
        if self.uses_watchdog:
            self.watchdog = start_watchdog(EXIT_DEADLINE)

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig in self._installed:
            self.loop.remove_signal_handler(sig)


def start_watchdog(deadline: float) -> threading.Timer:
    """The last bound of a shutdown: a daemon thread that ends the process ``deadline``
    seconds from now if it is still alive (every stage has its own bound; this catches
    what none foresaw, including the interpreter's own exit waiting on a thread). It
    exits 1: a shutdown that needed it did not finish its work."""

    def expire() -> None:
        log.error("shutdown still not finished %.0f s after the signal; exiting now", deadline)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(deadline, expire)
    timer.name, timer.daemon = "qtune-exit-watchdog", True
    timer.start()
    return timer


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed, else None (asyncio's own).

    uvloop runs the same asyncio code on libuv, with its transports in C; what it changed
    here is in docs/design.md's performance notes.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_bot(settings: Settings) -> int:
    """The bot process's main: :func:`run` on the fastest event loop installed."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(run(settings, process_main=True))


async def run(settings: Settings, *, process_main: bool = False) -> int:
    """Run the bot until SIGTERM/SIGINT (exit 0) or a fatal error.

    ``process_main``: the bot owns this process (its ``python -m bot``), so it may bound
    the whole exit after the signal by :data:`EXIT_DEADLINE`, the interpreter's own
    included, and freeze the start-up heap (:mod:`bot.app.heap`). A bot that shares its
    process (the tests') does neither.
    """
    token = settings.require_token()
    configure_logging(settings)
    loop = asyncio.get_running_loop()
    with StopSignals(loop, watchdog=process_main) as signals:
        async with open_bot(settings) as bot:
            if process_main:
                heap.collect_and_freeze()
                bot.add_listener(heap.freeze_at_first_ready(), "on_ready")
            return await _serve(bot, token, signals)


async def _serve(bot: QTuneBot, token: str, signals: StopSignals) -> int:
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    runner = asyncio.create_task(bot.start(token, reconnect=True), name="qtune-bot")
    stopper = asyncio.create_task(signals.stop.wait(), name="qtune-stop")
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if signals.stop.is_set():
            log.info("%s received; closing gracefully", signals.received)
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            await asyncio.sleep(0)  # let events dispatched during close run
            return 0
        runner.result()  # re-raises a start-up failure
        return 0
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN (401 Unauthorized)") from None
    except (OSError, aiohttp.ClientError, discord.HTTPException, discord.GatewayNotFound) as exc:
        log.debug("start-up failure", exc_info=exc)
        log.error("cannot connect to Discord: %s", redact(str(exc) or type(exc).__name__, token))
        return 1
    finally:
        stopper.cancel()
