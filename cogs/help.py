"""/help: what the bot does, how it learns, its commands and what it stores (ephemeral)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import THUMBS_DOWN, THUMBS_UP

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

STORED = (
    "**What I store about you** (nothing else, no message text or names): the table I "
    "learned from your reactions (a value and a count of reactions for each pair of "
    "genres), the genre you're on, and for each suggestion I post: its message, server "
    "and channel ids, the two genres, when, and your reaction. It is kept until you "
    "delete it: /export gives you a copy as a file, /reset deletes all of it."
)


def command_lines(tree: app_commands.CommandTree) -> list[str]:
    """``/name — description`` for each top-level command, sorted by name."""
    cmds = sorted(tree.get_commands(type=discord.AppCommandType.chat_input), key=lambda c: c.name)
    return [f"`/{c.name}` — {getattr(c, 'description', '')}" for c in cmds]


def help_text(tree: app_commands.CommandTree, like: float, dislike: float) -> str:
    return "\n".join(
        [
            "**qtune** suggests the music genre to play next, and learns your taste.",
            "",
            f"**How it learns:** tell me the genre you're playing with /nowplaying. I post a "
            f"suggestion; your first {THUMBS_UP} on it is a reward of {like:+g}, your first "
            f"{THUMBS_DOWN} {dislike:+g}. Each reward updates your own table (tabular "
            "Q-learning), so the next suggestions lean towards what you liked after that "
            "genre. Only the reaction of the person who asked counts; a line under each "
            "suggestion says why I chose it.",
            "",
            "**Commands:**",
            *command_lines(tree),
            "",
            STORED,
        ]
    )


class Help(commands.Cog):
    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What I do, how I learn, and what I store")
    async def help(self, interaction: discord.Interaction) -> None:
        service = getattr(self.bot, "service", None)
        like = getattr(service, "like_reward", 10.0)
        dislike = getattr(service, "dislike_reward", -5.0)
        await interaction.response.send_message(
            help_text(self.bot.tree, like, dislike), ephemeral=True
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Help(bot))
