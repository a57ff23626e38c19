"""The floor: the least a discord.py bot can do for qtune's /nowplaying, for the load benchmark.

    DISCORD_TOKEN=... DISCORD_API_BASE=... DISCORD_GATEWAY_URL=... python benchmarks/floor_bot.py

The same Discord work as qtune, with the fewest calls and nothing else: answer the
interaction with a suggestion (the callback returns the message, so no GET follows), add
👍 and 👎, and receive the reaction events (same intents as qtune) without acting on them.
No storage, no learner, no logging per event; the same event loop as qtune (uvloop
when it is installed), so the two differ only in what qtune adds. It reads the same
settings as the bot (``DISCORD_*``, ``QTUNE_DEV_GUILD``, ``QTUNE_GUILD_READY_TIMEOUT``), so
``benchmarks/e2e_load.py`` starts it exactly as it starts qtune, and measures its CPU per
interaction as the denominator of qtune's.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Callable

import discord
import yarl
from discord import app_commands

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"


class FloorBot(discord.Client):
    def __init__(self, dev_guild: int | None, guild_ready_timeout: float) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        super().__init__(intents=intents, guild_ready_timeout=guild_ready_timeout)
        self.tree = app_commands.CommandTree(self)
        self.dev_guild = discord.Object(dev_guild) if dev_guild else None
        self.tree.add_command(
            app_commands.Command(
                name="nowplaying",
                description="Tell me the genre you're playing; I'll suggest what's next",
                callback=nowplaying,
            )
        )

    async def setup_hook(self) -> None:
        if self.dev_guild is not None:
            self.tree.copy_global_to(guild=self.dev_guild)
        await self.tree.sync(guild=self.dev_guild)

    async def on_ready(self) -> None:
        assert self.user is not None
        print(f"connected as {self.user} (id {self.user.id})", flush=True)


async def nowplaying(interaction: discord.Interaction, genre: str) -> None:
    """Suggest a genre; the callback's response carries the message to react on."""
    text = (
        f"🎧 You're listening to **{genre}**. Try **{random.choice(GENRES)}** next!\n"
        f"React {THUMBS_UP} if you like the suggestion or {THUMBS_DOWN} if you don't."
    )
    sent = await interaction.response.send_message(
        text, allowed_mentions=discord.AllowedMentions.none()
    )
    message = sent.resource
    if isinstance(message, discord.InteractionMessage):
        await message.add_reaction(THUMBS_UP)
        await message.add_reaction(THUMBS_DOWN)


async def main() -> int:
    env = os.environ
    if api := env.get("DISCORD_API_BASE"):
        discord.http.Route.BASE = api.rstrip("/")
    if gateway := env.get("DISCORD_GATEWAY_URL"):
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    dev_guild = int(env["QTUNE_DEV_GUILD"]) if env.get("QTUNE_DEV_GUILD") else None
    bot = FloorBot(dev_guild, float(env.get("QTUNE_GUILD_READY_TIMEOUT", "2")))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await bot.close()
    stopping.cancel()
    if runner.done() and not runner.cancelled() and runner.exception() is not None:
        print(f"floor bot failed: {runner.exception()!r}", file=sys.stderr)
        return 1
    return 0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed, as ``bot.app.runner.event_loop_factory`` picks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        sys.exit(runner.run(main()))
