"""What every cog shares: the reaction emoji, per-user cooldowns and error wording.

Cogs are thin adapters: they parse Discord's arguments, call the service and format its
answer. No learning rule lives here.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import discord
from discord import app_commands

from bot.errors import QTuneError

log = logging.getLogger("qtune.cogs")

THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"
REACTIONS: dict[str, bool] = {THUMBS_UP: True, THUMBS_DOWN: False}
"""Emoji → liked. Anything else is not feedback."""

SOMETHING_WRONG = "Something went wrong on my side. It has been logged; please try again."


class Cooldowns:
    """Per-user, per-command cooldowns owned by one bot (monotonic clock, not Discord ids).

    ``hit`` returns ``None`` when the call may go ahead (and starts the cooldown), or the
    seconds left. A ``per`` of 0 disables cooldowns.
    """

    def __init__(self, per: float, clock=time.monotonic) -> None:
        self.per = float(per)
        self._clock = clock
        self._until: dict[tuple[str, int], float] = {}

    def hit(self, command: str, user_id: int) -> float | None:
        if self.per <= 0:
            return None
        now = self._clock()
        if len(self._until) > 4096:  # forget expired entries now and then
            self._until = {k: t for k, t in self._until.items() if t > now}
        until = self._until.get((command, user_id))
        if until is not None and until > now:
            return until - now
        self._until[(command, user_id)] = now + self.per
        return None


def enforce_cooldown(interaction: discord.Interaction, command: str) -> None:
    """Start the user's cooldown for ``command``, or raise ``CommandOnCooldown``.

    Called by a command once its arguments are valid, so a typo does not cost a cooldown.
    """
    cooldowns: Cooldowns | None = getattr(interaction.client, "cooldowns", None)
    if cooldowns is None:
        return
    retry = cooldowns.hit(command, interaction.user.id)
    if retry is not None:
        raise app_commands.CommandOnCooldown(app_commands.Cooldown(1, cooldowns.per), retry)


def _permission_words(names: list[str]) -> str:
    words = [n.replace("_", " ").replace("guild", "server").title() for n in names]
    return " and ".join(words) or "a special"


def error_message(error: BaseException) -> str | None:
    """Plain words for an expected error, or ``None`` for an unexpected one."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        original = getattr(error, "original", None) or error.__cause__
        if isinstance(original, QTuneError):
            return str(original)
    if isinstance(error, QTuneError):
        return str(error)
    if isinstance(error, app_commands.CommandOnCooldown):
        wait = max(1, math.ceil(error.retry_after))
        return f"You're going a little fast. Try again in {wait} s."
    if isinstance(error, app_commands.MissingPermissions):
        return f"You need the {_permission_words(error.missing_permissions)} permission for that."
    if isinstance(error, app_commands.BotMissingPermissions):
        return (
            f"I need the {_permission_words(error.missing_permissions)} permission "
            "in this channel for that."
        )
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, app_commands.TransformerError):
        return f"I couldn't understand {error.value!r} for that option."
    if isinstance(error, app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
        return "This command has just changed. Please try again in a minute."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


async def send_ephemeral(interaction: discord.Interaction, text: str, **kwargs: Any) -> None:
    """Answer privately, whether or not the interaction was already answered or deferred."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(text, ephemeral=True, **kwargs)
    except (discord.HTTPException, RuntimeError) as exc:
        # An expired token, a deleted channel, or the HTTP session already closed at shutdown.
        log.warning("could not answer an interaction: %s", exc)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The tree's error policy: expected errors in plain words, the rest logged in full."""
    message = error_message(error)
    command = interaction.command.qualified_name if interaction.command else "?"
    if message is None:
        original = getattr(error, "original", error)
        log.error(
            "unexpected error in /%s for user %s",
            command,
            interaction.user.id if interaction.user else "?",
            exc_info=(type(original), original, original.__traceback__),
        )
        message = SOMETHING_WRONG
    else:
        log.debug("/%s answered with an error: %s", command, message)
    await send_ephemeral(interaction, message)


def service_of(interaction_or_bot: Any):
    """The QTuneService of the bot behind an interaction (or of a bot)."""
    bot = getattr(interaction_or_bot, "client", interaction_or_bot)
    service = getattr(bot, "service", None)
    if service is None:
        raise QTuneError("I'm still starting up. Please try again in a few seconds.")
    return service
