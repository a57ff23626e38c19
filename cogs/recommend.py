"""/nowplaying: suggest the next genre and put 👍/👎 under it (cogs.reactions listens)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import THUMBS_DOWN, THUMBS_UP, enforce_cooldown, send_ephemeral

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

log = logging.getLogger("qtune.cogs.recommend")


def suggestion_text(state: str, action: str, reason: str) -> str:
    """The public reply; ``reason`` is the service's one-line explanation."""
    why = f"\n-# {reason}" if reason else ""
    return (
        f"🎧 You're listening to **{state}**. Try **{action}** next!\n"
        f"React {THUMBS_UP} if you like the suggestion or {THUMBS_DOWN} if you don't: "
        f"I learn from your first reaction.{why}"
    )


class Recommend(commands.Cog):
    """Suggest a genre; the requester's reaction is handled by ``cogs.reactions``."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="nowplaying", description="Tell me the genre you're playing; I'll suggest what's next"
    )
    @app_commands.describe(genre="The genre you're listening to now")
    @app_commands.guild_only()
    async def nowplaying(self, interaction: discord.Interaction, genre: str) -> None:
        service = self.bot.service
        state = service.parse_genre(genre)  # UnknownGenre → the tree's error handler
        enforce_cooldown(interaction, "nowplaying")
        async with self.bot.in_flight.hold():
            suggestion = await service.recommend(interaction.user.id, state, interaction.guild_id)
            callback = await interaction.response.send_message(
                suggestion_text(suggestion.state, suggestion.action, suggestion.reason),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            # The callback's answer already holds the message: no GET of @original.
            message = callback.resource
            if message is None or isinstance(message, discord.InteractionCallbackActivityInstance):
                message = await interaction.original_response()  # an answer without it
            # Stored before the reactions exist, so no reaction can arrive for an unknown message.
            await service.record(
                message.id, suggestion, interaction.guild_id, interaction.channel_id
            )
            # Inside the hold: a shutdown lets the reactions finish instead of cutting them.
            await self._add_reactions(interaction, message)

    async def _add_reactions(
        self, interaction: discord.Interaction, message: discord.InteractionMessage
    ) -> None:
        try:
            await message.add_reaction(THUMBS_UP)
            await message.add_reaction(THUMBS_DOWN)
        except discord.Forbidden:
            await send_ephemeral(
                interaction,
                f"I can't add reactions in this channel (Add Reactions permission). "
                f"You can still react {THUMBS_UP} or {THUMBS_DOWN} yourself.",
            )
        except (discord.HTTPException, aiohttp.ClientError, RuntimeError) as exc:
            if not self.bot.is_closed():
                raise
            # Shut down mid-way: the suggestion is stored, and a 👍/👎 the member adds by
            # hand is applied by the start-up catch-up, so nothing is lost.
            log.info(
                "shutting down: left the reactions on %s unfinished (%s)",
                message.id,
                type(exc).__name__,
            )

    @nowplaying.autocomplete("genre")
    async def genre_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        service = self.bot.service
        typed = current.strip().casefold()
        genres = [g for g in service.genres if typed in g.casefold()]
        if not genres:
            try:
                genres = [service.parse_genre(current)]  # an alias such as "hip hop"
            except ValueError:
                genres = []
        return [app_commands.Choice(name=g, value=g) for g in genres[:25]]


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Recommend(bot))
