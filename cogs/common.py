"""What every cog shares: the reaction emoji, the cooldown check and the error policy.

Cogs are thin adapters: they parse Discord's arguments, call the service and format its
answer. No learning rule lives here.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.app.cooldowns import Cooldowns
from bot.errors import QTuneError, StorageError

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot
    from bot.service import QTuneService

__all__ = [
    "DATABASE_DOWN",
    "REACTIONS",
    "SOMETHING_WRONG",
    "THUMBS_DOWN",
    "THUMBS_UP",
    "Cooldowns",
    "enforce_cooldown",
    "error_message",
    "report_error",
    "send_ephemeral",
    "service_of",
]

log = logging.getLogger("qtune.cogs")

THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"
REACTIONS: dict[str, bool] = {THUMBS_UP: True, THUMBS_DOWN: False}
"""Emoji → liked. Anything else is not feedback."""

SOMETHING_WRONG = "Something went wrong on my side. It has been logged; please try again."
DATABASE_DOWN = "I can't reach my database; try again in a moment."


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


def original_error(error: BaseException) -> BaseException:
    """The exception a command raised, unwrapped from discord.py's wrappers."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        original = getattr(error, "original", None) or error.__cause__
        if original is not None:
            return original
    return error


def error_message(error: BaseException) -> str | None:
    """Plain words for an expected error, or ``None`` for an unexpected one."""
    original = original_error(error)
    if isinstance(original, QTuneError):
        return str(original)
    if isinstance(original, StorageError):
        return DATABASE_DOWN
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
    """The one error policy of every command and view.

    Expected errors are answered in plain words; a database failure is logged at WARNING
    with its cause and answered "try again in a moment"; anything else is logged in full
    and answered with an apology. Every answer is ephemeral.
    """
    message = error_message(error)
    original = original_error(error)
    command = interaction.command.qualified_name if interaction.command else "?"
    user = interaction.user.id if interaction.user else "?"
    cause = (type(original), original, original.__traceback__)
    if isinstance(original, StorageError):
        log.warning(
            "/%s for user %s: the database failed: %s", command, user, original, exc_info=cause
        )
    elif message is None:
        log.error("unexpected error in /%s for user %s", command, user, exc_info=cause)
        message = SOMETHING_WRONG
    else:
        log.debug("/%s answered with an error: %s", command, message)
    await send_ephemeral(interaction, message or SOMETHING_WRONG)


def service_of(bot: QTuneBot) -> QTuneService:
    """The service of a bot (kept for the cogs' brevity; the bot is given one at birth)."""
    return bot.service
