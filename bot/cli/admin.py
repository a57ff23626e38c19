"""Operator chores: ``commands list|clear`` (app-command registrations) and ``backup FILE``.

``commands`` talks to Discord's REST API only (no gateway), with the bot's own token and
endpoints. ``backup`` copies a live SQLite database with SQLite's online backup API: one
consistent snapshot, taken while the bot keeps writing (WAL readers never block writers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.config import ConfigError, Settings
from bot.errors import InvalidRequest
from storage.factory import is_postgres_url

if TYPE_CHECKING:
    from discord import app_commands


def register(subparsers: argparse._SubParsersAction) -> None:
    cmds = subparsers.add_parser(
        "commands",
        help="list or clear the bot's app commands registered on Discord",
        description=(
            "List the app commands registered for this bot globally and in a guild, or "
            "clear one registration (e.g. the stale copy left after changing QTUNE_DEV_GUILD)."
        ),
    )
    # The same parser class as the top level: one-line errors, exit 2.
    actions = cmds.add_subparsers(dest="action", required=True, parser_class=type(cmds))
    listing = actions.add_parser("list", help="show the registered commands")
    listing.add_argument("--guild", type=_guild_id, help="also this guild (else QTUNE_DEV_GUILD)")
    listing.set_defaults(func=cmd_commands_list)
    clearing = actions.add_parser("clear", help="delete one registration (asks first)")
    target = clearing.add_mutually_exclusive_group(required=True)
    target.add_argument("--guild", type=_guild_id, help="the guild's registration")
    target.add_argument("--global", dest="globally", action="store_true", help="the global one")
    clearing.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    clearing.set_defaults(func=cmd_commands_clear)

    backup = subparsers.add_parser(
        "backup",
        help="copy the SQLite database consistently, safe while the bot runs",
        description=(
            "Copy QTUNE_DB (or --db) to FILE with SQLite's online backup API: a consistent "
            "snapshot even while the bot writes. FILE must not exist (unless --force)."
        ),
    )
    backup.add_argument("file", help="where to write the copy")
    backup.add_argument("--db", help="the database file (default: QTUNE_DB)")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.set_defaults(func=cmd_backup)


def _guild_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"not a server id: {text!r} (Copy Server ID gives one)")
    return int(text)


# ------------------------------------------------------------------------ commands
def cmd_commands_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    guild = args.guild or settings.dev_guild
    found = asyncio.run(_list(settings, guild))
    for scope, names in found.items():
        shown = ", ".join(f"/{n}" for n in names) if names else "(none)"
        sys.stdout.write(f"{scope}: {shown}\n")
    if guild and set(found["global"]) & set(found[f"guild {guild}"]):
        sys.stdout.write(
            "warning: some commands are registered in both places, so members of that "
            "server see them twice; remove one with: python -m bot commands clear\n"
        )
    return 0


async def _list(settings: Settings, guild: int | None) -> dict[str, list[str]]:
    from bot.app.registrations import registered

    async with _rest_client(settings) as tree:
        found = {"global": await registered(tree, None)}
        if guild:
            found[f"guild {guild}"] = await registered(tree, guild)
        return found


def cmd_commands_clear(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    guild = None if args.globally else args.guild
    return asyncio.run(_clear(settings, guild, args.yes, sys.stdin, sys.stdout))


async def _clear(settings: Settings, guild: int | None, yes: bool, inp: TextIO, out: TextIO) -> int:
    from bot.app.registrations import clear, registered, where
    from bot.app.sync import SYNC_HASH_KEY
    from bot.config import open_service

    async with _rest_client(settings) as tree:
        names = await registered(tree, guild)
        if not names:
            out.write(f"No commands are registered {where(guild)}; nothing to clear.\n")
            return 0
        listed = ", ".join(f"/{n}" for n in names)
        if not yes:
            if not inp.isatty():
                raise InvalidRequest("not clearing without confirmation: add --yes")
            out.write(f"Delete {len(names)} command(s) registered {where(guild)} ({listed})? ")
            out.write("Type yes to confirm: ")
            out.flush()
            if inp.readline().strip().casefold() != "yes":
                out.write("Nothing deleted.\n")
                return 1
        assert tree.client.application_id is not None
        await clear(tree._http, tree.client.application_id, guild)
    # The bot syncs only when its commands changed; forget the last sync so that the
    # next start registers them again where it is configured to.
    service, storage = await open_service(settings, cpu=False)
    try:
        await service.set_meta(SYNC_HASH_KEY, "")
    finally:
        await storage.close()
    out.write(f"Deleted {len(names)} command(s) registered {where(guild)}: {listed}.\n")
    out.write("The next start of the bot syncs its commands to where it is configured.\n")
    return 0


@contextlib.asynccontextmanager
async def _rest_client(settings: Settings) -> AsyncIterator[app_commands.CommandTree]:
    """A logged-in discord.py client (REST only, no gateway) and an empty tree on it."""
    import discord
    from discord import app_commands

    from bot.app.bot import apply_endpoints

    apply_endpoints(settings)
    client = discord.Client(intents=discord.Intents.none())
    try:
        try:
            await client.login(settings.require_token())
            app = await client.application_info()
        except discord.LoginFailure:
            raise ConfigError("Discord rejected DISCORD_TOKEN (401 Unauthorized)") from None
        except (OSError, discord.HTTPException) as exc:
            raise ConfigError(f"cannot reach Discord: {exc}") from None
        client._connection.application_id = app.id
        yield app_commands.CommandTree(client)
    finally:
        await client.close()


# -------------------------------------------------------------------------- backup
def cmd_backup(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    source = args.db or settings.database
    if is_postgres_url(source):
        raise ConfigError("backup copies SQLite files; for PostgreSQL use pg_dump (see the README)")
    summary = backup_sqlite(Path(source), Path(args.file), force=args.force)
    sys.stdout.write(summary + "\n")
    return 0


def backup_sqlite(source: Path, dest: Path, *, force: bool = False) -> str:
    """Copy a live SQLite database to ``dest`` consistently; returns a one-line summary.

    The copy is written next to ``dest`` and renamed into place once it is complete and
    passes ``PRAGMA integrity_check``, so ``dest`` is never a half-written file.
    """
    if not source.is_file():
        raise ConfigError(f"no database at {source} (QTUNE_DB)")
    if dest.exists() and not force:
        raise InvalidRequest(f"{dest} already exists (add --force to replace it)")
    if not dest.parent.is_dir():
        raise InvalidRequest(f"no folder {dest.parent} for the backup")
    if dest.resolve() == source.resolve():
        raise InvalidRequest("the backup must not be the database itself")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        # mode=rw: never create a database where there is none.
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
        try:
            out = sqlite3.connect(partial)
            try:
                src.backup(out)  # one step: a single snapshot, whatever writers do meanwhile
                check = out.execute("PRAGMA integrity_check").fetchone()[0]
                version = out.execute("PRAGMA user_version").fetchone()[0]
                users = out.execute("SELECT count(*) FROM users").fetchone()[0]
                recs = out.execute("SELECT count(*) FROM recommendations").fetchone()[0]
            finally:
                out.close()
        finally:
            src.close()
        if check != "ok":
            raise ConfigError(f"the copy failed its integrity check: {check}")
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot back up {source}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    size = dest.stat().st_size / 2**20
    return (
        f"Backed up {source} to {dest}: schema v{version}, {users} user(s), "
        f"{recs} recommendation(s), {size:.1f} MiB."
    )
