"""/reset: forget everything about the caller, after an explicit confirmation."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import report_error

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

log = logging.getLogger("qtune.cogs.reset")

CONFIRM_TIMEOUT = 60.0


def done_message(deleted: bool) -> str:
    if deleted:
        return "Done: your Q-table, ε and recommendation history are deleted. I'll start fresh."
    return "There was nothing to delete: I haven't learned anything about you yet."


async def do_reset(bot: QTuneBot, user_id: int) -> bool:
    async with bot.in_flight.hold():
        return await bot.service.reset(user_id)


class ConfirmReset(discord.ui.View):
    """Two buttons, usable only by the person who asked."""

    def __init__(self, bot: QTuneBot, owner_id: int, origin: discord.Interaction) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.bot = bot
        self.owner_id = owner_id
        self.origin = origin
        self.result: bool | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("This button isn't for you.", ephemeral=True)
        return False

    @discord.ui.button(label="Delete my data", style=discord.ButtonStyle.danger)
    async def confirm(
        self, interaction: discord.Interaction, _button: discord.ui.Button[ConfirmReset]
    ) -> None:
        self.stop()
        self.result = await do_reset(self.bot, self.owner_id)
        await interaction.response.edit_message(content=done_message(self.result), view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(
        self, interaction: discord.Interaction, _button: discord.ui.Button[ConfirmReset]
    ) -> None:
        self.stop()
        self.result = False
        await interaction.response.edit_message(content="Cancelled: nothing deleted.", view=None)

    async def on_timeout(self) -> None:
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(
                content="No answer, so nothing was deleted.", view=None
            )

    async def on_error(
        self,
        interaction: discord.Interaction,
        error: Exception,
        _item: discord.ui.Item[ConfirmReset],
    ) -> None:
        await report_error(interaction, error)


class Reset(commands.Cog):
    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(name="reset", description="Delete what I've learned about you")
    @app_commands.describe(confirm="True to delete right away, without the confirmation button")
    async def reset(self, interaction: discord.Interaction, confirm: bool = False) -> None:
        if confirm:
            deleted = await do_reset(self.bot, interaction.user.id)
            await interaction.response.send_message(done_message(deleted), ephemeral=True)
            return
        view = ConfirmReset(self.bot, interaction.user.id, interaction)
        await interaction.response.send_message(
            "Delete your Q-table, ε and recommendation history? This can't be undone.",
            view=view,
            ephemeral=True,
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Reset(bot))
