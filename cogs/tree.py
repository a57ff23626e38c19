"""The command tree's policy: the global check and the error handler, as an extension.

The app does not import the cogs, so the tree's ``interaction_check`` and ``on_error``
are installed from here (the way python-discord's error-handler cog does it) and
restored when the extension unloads. Every command and view then shares one policy:
malformed payloads are refused before discord.py parses them (:mod:`cogs.checks`), and
every error is answered by :func:`cogs.common.report_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs.checks import check_interaction
from cogs.common import report_error

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

TreeHook = Callable[..., Coroutine[Any, Any, Any]]


class TreePolicy(commands.Cog):
    """Installs the global check and the error policy on the bot's command tree."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot
        self._previous: tuple[TreeHook, TreeHook] | None = None

    async def cog_load(self) -> None:
        tree = self.bot.tree
        self._previous = (tree.on_error, tree.interaction_check)
        tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        tree.interaction_check = self.interaction_check  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        if self._previous is not None:
            tree = self.bot.tree
            tree.on_error, tree.interaction_check = self._previous  # type: ignore[method-assign]

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Malformed payloads are answered in plain words before discord.py parses them."""
        return check_interaction(interaction)

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        await report_error(interaction, error)


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(TreePolicy(bot))
