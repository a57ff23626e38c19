"""/stats: a member's own history as a picture, or a server's aggregate taste."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.service import ServerStats
from bot.workers import render_stats_png
from cogs.common import enforce_cooldown
from cogs.table import display_name

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

NO_HISTORY = (
    "No data yet: you haven't rated any of my suggestions. Use /nowplaying and react "
    "👍 or 👎; your history will show here."
)


def server_message(stats: ServerStats) -> str:
    """The server's figures as lines, best-liked genre first."""
    if not stats.genres:
        if stats.hidden:
            return (
                "Not enough members have rated suggestions here yet: I show a genre once "
                f"at least {stats.min_members} members rated it."
            )
        return "Nobody in this server has rated a suggestion yet."
    lines = [f"**What this server likes** ({stats.members} members rated suggestions)"]
    for g in stats.genres:
        lines.append(
            f"**{g.genre}**: liked {g.share:.0%} of {g.ratings} times, by {g.members} members"
        )
    if stats.hidden:
        lines.append(
            f"-# {stats.hidden} genre(s) not shown: fewer than {stats.min_members} members "
            "rated them."
        )
    return "\n".join(lines)


class Stats(commands.Cog):
    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description="Your listening history, or this server's")
    @app_commands.describe(scope="me: your own history (private); server: what members like")
    async def stats(
        self, interaction: discord.Interaction, scope: Literal["me", "server"] = "me"
    ) -> None:
        service = self.bot.service
        if scope == "server":
            if interaction.guild_id is None:
                raise app_commands.NoPrivateMessage()
            every = bool(interaction.permissions.manage_guild)
            async with self.bot.in_flight.hold():
                stats = await service.server_stats(interaction.guild_id, every_figure=every)
            await interaction.response.send_message(server_message(stats), ephemeral=True)
            return
        enforce_cooldown(interaction, "stats")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.in_flight.hold():
            history = await service.history(interaction.user.id)
        if not history.reactions:
            await interaction.followup.send(NO_HISTORY, ephemeral=True)
            return
        n = len(history.reactions)
        title = f"{display_name(interaction.user)}: {n} reaction{'' if n == 1 else 's'}"
        png = await service.run_cpu(
            render_stats_png,
            history.table.genres,
            [r.action for r in history.reactions],
            [r.liked for r in history.reactions],
            history.beliefs,
            title,
        )
        likes = sum(r.liked for r in history.reactions)
        await interaction.followup.send(
            f"You liked {likes} of my {n} suggestions you rated.",
            file=discord.File(io.BytesIO(png), "stats.png"),
            ephemeral=True,
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Stats(bot))
