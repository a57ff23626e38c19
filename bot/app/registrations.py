"""Where the app commands are registered on Discord: list, clear, and spot doubles.

Switching ``QTUNE_DEV_GUILD`` on or off syncs to the new target but leaves the old
registration in place, so members of the dev server see every command twice. The bot
remembers the last dev guild it synced to (metadata ``app_commands_dev_guild``) and warns
at start when the same names are registered both globally and there; the operator CLI
(``python -m bot commands list|clear``) shows and removes registrations.
"""

from __future__ import annotations

import logging
from typing import Protocol

import discord
from discord import app_commands

log = logging.getLogger("qtune.bot")

DEV_GUILD_KEY = "app_commands_dev_guild"


class Meta(Protocol):
    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


def where(guild_id: int | None) -> str:
    return f"in guild {guild_id}" if guild_id else "globally"


async def registered(tree: app_commands.CommandTree, guild_id: int | None) -> list[str]:
    """Names of the commands Discord has registered for this application there."""
    guild = discord.Object(id=guild_id) if guild_id else None
    return sorted(c.name for c in await tree.fetch_commands(guild=guild))


async def clear(http: discord.http.HTTPClient, app_id: int, guild_id: int | None) -> None:
    """Remove every command registered there (Discord's bulk overwrite with an empty list)."""
    if guild_id:
        await http.bulk_upsert_guild_commands(app_id, guild_id, [])
    else:
        await http.bulk_upsert_global_commands(app_id, [])


async def warn_if_doubled(
    tree: app_commands.CommandTree, meta: Meta, dev_guild: int | None
) -> list[str]:
    """Log a warning when a command is registered both globally and in a dev guild.

    The guild checked is the configured dev guild, or else the last one synced to.
    Returns the doubled names (empty when none, or when Discord could not be asked).
    """
    if dev_guild:
        await meta.set_meta(DEV_GUILD_KEY, str(dev_guild))
        guild_id: int | None = dev_guild
    else:
        last = await meta.get_meta(DEV_GUILD_KEY)
        guild_id = int(last) if last and last.isdigit() else None
    if guild_id is None:
        return []
    try:
        doubled = sorted(set(await registered(tree, None)) & set(await registered(tree, guild_id)))
    except (discord.HTTPException, discord.ClientException) as exc:
        log.debug("could not list registered commands: %s", exc)
        return []
    if doubled:
        stale = f"--guild {guild_id}" if not dev_guild else "--global"
        log.warning(
            "the same commands are registered globally and in guild %s (%s): members there "
            "see them twice; remove the stale copy with: python -m bot commands clear %s",
            guild_id,
            ", ".join(f"/{n}" for n in doubled),
            stale,
        )
    return doubled
