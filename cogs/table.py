"""/qtable: a user's Q-table as an annotated heatmap plus a monospace table."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.render.text import format_q_table, table_summary
from bot.service import TableView
from bot.workers import render_qtable_png
from cogs.common import send_ephemeral

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

MAX_TEXT = 1800  # Discord allows 2000 characters per message


def table_message(name: str, view: TableView) -> str:
    text = format_q_table(view.genres, view.q, view.policy)
    body = f"```\n{text}\n```" if len(text) <= MAX_TEXT else "(table too wide for text; see image)"
    return f"**Q-table for {name}** · {table_summary(view)}\n{body}\n-# * = best next genre"


def display_name(user: discord.abc.Snowflake) -> str:
    """The name to show; an unresolved user (a bare id) is shown by id."""
    return getattr(user, "display_name", None) or f"user {user.id}"


def no_data_message(name: str, own: bool) -> str:
    if own:
        return (
            "No data yet: I haven't learned anything about your taste. Use /nowplaying and "
            "react 👍 or 👎 to my suggestion, or pretrain with /simulate."
        )
    return f"No data yet: I haven't learned anything about {name}."


class Table(commands.Cog):
    """Show what the bot has learned about a listener."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(name="qtable", description="Show what I've learned about your taste")
    @app_commands.describe(
        user="Whose table (someone else's needs Manage Server)",
        public="Show it to the channel instead of only you",
    )
    async def qtable(
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        public: bool = False,
    ) -> None:
        target = user or interaction.user
        if target.id != interaction.user.id:
            perms = interaction.permissions
            if interaction.guild_id is None or not perms.manage_guild:
                raise app_commands.MissingPermissions(["manage_guild"])
        service = self.bot.service
        name = display_name(target)
        await interaction.response.defer(ephemeral=not public, thinking=True)
        async with self.bot.in_flight.hold():
            view = await service.table(target.id)
        if not view.learned:
            own = target.id == interaction.user.id
            await send_ephemeral(interaction, no_data_message(name, own))
            return
        png = await service.run_cpu(render_qtable_png, view.genres, view.q, f"Q-table for {name}")
        await interaction.followup.send(
            table_message(name, view),
            file=discord.File(io.BytesIO(png), "qtable.png"),
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Table(bot))
