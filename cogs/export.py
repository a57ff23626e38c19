"""/export: the caller's own data as a JSON file, privately (the same scope as /reset)."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import enforce_cooldown

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot


def export_file(data: dict) -> discord.File:
    blob = json.dumps(data, indent=2, ensure_ascii=False).encode()
    return discord.File(io.BytesIO(blob), f"qtune-export-{data['user_id']}.json")


def export_message(data: dict) -> str:
    n = len(data["recommendations"])
    if data["table"] is None and not n:
        return "I have nothing stored about you: the file is empty apart from the genres."
    plural = "" if n == 1 else "s"
    return (
        f"Everything I store about you: your table and {n} recommendation{plural}. "
        "/reset deletes all of it."
    )


class Export(commands.Cog):
    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(name="export", description="Download everything I store about you")
    async def export(self, interaction: discord.Interaction) -> None:
        service = self.bot.service
        enforce_cooldown(interaction, "export")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.in_flight.hold():
            data = await service.export(interaction.user.id)
        await interaction.followup.send(
            export_message(data), file=export_file(data), ephemeral=True
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Export(bot))
