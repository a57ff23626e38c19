"""App-command sync by hash: sync only when the command definitions (or the target) change.

Discord limits command creations (200 a day), and a sync on every start also makes every
client re-fetch the commands. The hash of what would be synced is kept in the database's
metadata; a start with the same hash does not sync. A start where an extension failed to
load does not sync either: that would delete the broken cog's commands from Discord.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import discord
from discord import app_commands

log = logging.getLogger("qtune.bot")

SYNC_HASH_KEY = "app_commands_hash"


class Meta(Protocol):
    """Where the last synced hash is kept (the service's metadata)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


def sync_target(dev_guild: int | None) -> discord.Object | None:
    """The dev guild, or ``None`` for a global sync."""
    return discord.Object(id=dev_guild) if dev_guild else None


def command_payload(
    tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None
) -> list[dict[str, Any]]:
    """What a sync to ``guild`` (``None``: global) would send, in a stable order."""
    if guild is not None:
        tree.copy_global_to(guild=guild)
    commands = sorted(tree.get_commands(guild=guild), key=lambda c: c.name)
    return [c.to_dict(tree) for c in commands]


def command_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    """SHA-256 of the sync target and the command payload."""
    target = f"guild:{guild.id}" if guild is not None else "global"
    payload = command_payload(tree, guild)
    blob = json.dumps({"target": target, "commands": payload}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree,
    meta: Meta,
    dev_guild: int | None,
    failed_extensions: Sequence[str] = (),
) -> bool | None:
    """Sync when the definitions changed since the last sync.

    Returns True when synced, False when unchanged, None when a sync was needed but not
    done (an extension failed to load, or Discord refused).
    """
    guild = sync_target(dev_guild)
    digest = command_hash(tree, guild)
    where = f"guild {guild.id}" if guild is not None else "all guilds (global)"
    if await meta.get_meta(SYNC_HASH_KEY) == digest:
        log.info("app commands unchanged since the last sync; not syncing")
        return False
    if failed_extensions:
        log.warning(
            "not syncing app commands: %s failed to load, and syncing now would remove "
            "their commands from Discord",
            ", ".join(failed_extensions),
        )
        return None
    try:
        synced = await tree.sync(guild=guild)
    except discord.HTTPException as exc:
        log.error("syncing app commands to %s failed: %s", where, exc)
        return None
    await meta.set_meta(SYNC_HASH_KEY, digest)
    log.info("synced %d app command(s) to %s", len(synced), where)
    return True
