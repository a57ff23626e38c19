"""The bot built by the project's own launcher (``bot.app.runner.open_bot``), running in
the test's event loop.

Waits wake on events, not a timer: the bot's ``app_command_completion`` event, any change
in the fake, and every log record of the ``qtune`` loggers (the bot logs each reaction it
handles, applied or ignored, after the database has it), so a check of stored state is
re-run exactly when something may have changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord

from tests.fakediscord import FakeDiscord, Interaction, Message
from tests.harness.flows import nowplaying

BOT_LOG = "bot-log"


class _Wake(logging.Handler):
    """Turns each log record into a change of the fake (from any thread)."""

    def __init__(self, fake: FakeDiscord, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.DEBUG)
        self.fake = fake
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self.loop.call_soon_threadsafe(self.fake.changes.notify, BOT_LOG)


class InProcessBot:
    """Handle on a running in-process bot: its service, and waits on what it did."""

    def __init__(self, bot: Any, task: asyncio.Task[None], fake: FakeDiscord) -> None:
        self.bot = bot
        self.task = task
        self.fake = fake
        self.completed: list[tuple[str, int]] = []  # (command name, interaction id)
        bot.add_listener(self._on_completion, "on_app_command_completion")

    async def _on_completion(self, interaction: discord.Interaction, command: Any) -> None:
        self.completed.append((command.qualified_name, interaction.id))
        self.fake.changes.notify(("completed", interaction.id))

    @property
    def service(self) -> Any:
        return self.bot.service

    async def wait_completed(self, interaction_id: int, within: float = 10.0) -> None:
        """Wait for the bot's ``app_command_completion`` event of one interaction."""
        try:
            await self.fake.changes.wait_for(
                lambda: any(i == interaction_id for _, i in self.completed),
                within,
                ("completed", interaction_id),
                give_up=self.task.done,
            )
        except TimeoutError:
            raise AssertionError(
                f"interaction {interaction_id} never completed\n{self.fake.dump()}"
            ) from None

    async def eventually(
        self, check: Callable[[], Awaitable[Any]], within: float = 10.0, what: str = ""
    ) -> Any:
        """``await check()`` until truthy, re-run on every bot log record and fake change."""
        try:
            return await self.fake.changes.wait_for_async(check, within, give_up=self.task.done)
        except TimeoutError:
            last = await check()
            raise AssertionError(
                f"not true within {within}s: {what} (last: {last!r})\n{self.fake.dump()}"
            ) from None

    async def nowplaying(
        self, user_id: int, genre: str = "rock", **where: Any
    ) -> tuple[Interaction, Message]:
        """Run ``/nowplaying genre``, wait until it completed; return (interaction, message)."""
        inter, msg = await nowplaying(self.fake, user_id, genre, **where)
        await self.wait_completed(inter.id)
        return inter, msg

    async def rewards(self, user_id: int) -> int:
        return (await self.service.table(user_id)).rewards


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, env: dict[str, str]) -> AsyncIterator[InProcessBot]:
    """Build the bot from ``env`` with the project's own code and run it until the block ends.

    discord.py's endpoints are process-global class attributes that the bot sets from its
    settings; they are restored afterwards, as is the ``qtune`` logger's level (set to DEBUG
    here so that every handled reaction wakes the waits).
    """
    from bot.app.runner import open_bot
    from bot.config import Settings

    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    logger = logging.getLogger("qtune")
    saved_level = logger.level
    wake = _Wake(fake, asyncio.get_running_loop())
    logger.addHandler(wake)
    if logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.DEBUG)
    stack = contextlib.AsyncExitStack()
    bot = await stack.enter_async_context(open_bot(Settings.from_env(env)))
    task = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]), name="e2e-bot")
    handle = InProcessBot(bot, task, fake)
    try:
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=15, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task.done() and task.exception() is not None:
                raise AssertionError(f"bot failed to start: {task.exception()!r}\n{fake.dump()}")
            raise AssertionError(f"bot never became ready\n{fake.dump()}")
        yield handle
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        await stack.aclose()  # the storage closes after the bot
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
        logger.removeHandler(wake)
        logger.setLevel(saved_level)
