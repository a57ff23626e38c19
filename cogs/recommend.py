"""/nowplaying and the 👍/👎 reactions that turn into rewards."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import (
    REACTIONS,
    THUMBS_DOWN,
    THUMBS_UP,
    enforce_cooldown,
    send_ephemeral,
    service_of,
)

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
    """Suggest a genre and learn from the requester's reaction."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(
        name="nowplaying", description="Tell me the genre you're playing; I'll suggest what's next"
    )
    @app_commands.describe(genre="The genre you're listening to now")
    @app_commands.guild_only()
    async def nowplaying(self, interaction: discord.Interaction, genre: str) -> None:
        service = service_of(self.bot)
        state = service.parse_genre(genre)  # UnknownGenre → the tree's error handler
        enforce_cooldown(interaction, "nowplaying")
        async with self.bot.activity():
            suggestion = await service.recommend(interaction.user.id, state)
            await interaction.response.send_message(
                suggestion_text(suggestion.state, suggestion.action, suggestion.reason),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            message = await interaction.original_response()
            # Stored before the reactions exist, so no reaction can arrive for an unknown message.
            await service.record(
                message.id, suggestion, interaction.guild_id, interaction.channel_id
            )
        try:
            await message.add_reaction(THUMBS_UP)
            await message.add_reaction(THUMBS_DOWN)
        except discord.Forbidden:
            await send_ephemeral(
                interaction,
                f"I can't add reactions in this channel (Add Reactions permission). "
                f"You can still react {THUMBS_UP} or {THUMBS_DOWN} yourself.",
            )

    @nowplaying.autocomplete("genre")
    async def genre_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        service = getattr(self.bot, "service", None)
        if service is None:
            return []
        typed = current.strip().casefold()
        genres = [g for g in service.genres if typed in g.casefold()]
        if not genres:
            try:
                genres = [service.parse_genre(current)]  # an alias such as "hip hop"
            except ValueError:
                genres = []
        return [app_commands.Choice(name=g, value=g) for g in genres[:25]]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        emoji = str(payload.emoji)
        if me is not None and payload.user_id == me.id:
            log.debug("ignored reaction %s on %s: the bot's own", emoji, payload.message_id)
            return
        if payload.member is not None and payload.member.bot:
            log.debug("ignored reaction %s on %s: by a bot", emoji, payload.message_id)
            return
        liked = REACTIONS.get(emoji)
        if liked is None:
            log.debug("ignored reaction %s on %s: not feedback", emoji, payload.message_id)
            return
        author = payload.message_author_id
        if me is not None and author is not None and author != me.id:
            log.debug("ignored reaction on %s: not the bot's message", payload.message_id)
            return
        try:
            async with self.bot.activity():
                result = await service_of(self.bot).feedback(
                    payload.message_id, payload.user_id, liked
                )
        except Exception:
            log.exception("feedback for message %s failed", payload.message_id)
            return
        if result.applied:
            log.info(
                "reward %+g from user %s: %s → %s (TD error %+.3f, ε %.3f)",
                result.reward,
                payload.user_id,
                result.state,
                result.action,
                result.td_error,
                result.epsilon,
            )
        else:
            log.debug(
                "ignored reaction %s on %s by %s: %s",
                emoji,
                payload.message_id,
                payload.user_id,
                result.reason,
            )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Recommend(bot))
