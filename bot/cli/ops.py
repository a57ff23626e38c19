"""Operator subcommands: ``run`` (the bot), ``qtable USER_ID [--json]`` and ``console``.

Each handler returns an exit code. Expected errors (bad configuration, an unknown user
id, ...) are :class:`bot.errors.QTuneError` and end as one line on stderr with exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.console import CONSOLE_DB
from bot.config import ConfigError, Settings, open_service
from bot.errors import InvalidRequest
from bot.render.text import format_policy, format_q_table, table_dict, table_summary
from storage.base import StorageError
from storage.factory import check_target, is_postgres_url

if TYPE_CHECKING:
    from bot.service import TableView


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="start the Discord bot (the default)",
        description="Start the Discord bot. Settings come from the environment and .env.",
    )
    run.set_defaults(func=cmd_run)

    qtable = subparsers.add_parser(
        "qtable",
        help="print a user's Q-table from the database",
        description="Print a user's Q-table, ε and reward count. Safe while the bot runs.",
    )
    qtable.add_argument("user_id", type=_user_id, help="the Discord user id")
    qtable.add_argument("--json", action="store_true", help="print JSON instead of a table")
    qtable.add_argument("--db", help="database file or postgresql:// URL (default: QTUNE_DB)")
    qtable.set_defaults(func=cmd_qtable)

    console = subparsers.add_parser(
        "console",
        help="try the recommender in the terminal, without Discord",
        description=(
            "An offline console over the same service and database as the bot: type a "
            "genre, get a suggestion, answer y or n, and watch the table learn."
        ),
    )
    console.add_argument(
        "--user-id",
        type=_user_id,
        default=None,
        help="whose table to use (default: the console's own listener, id 1)",
    )
    console.add_argument(
        "--db",
        help=f"database file or postgresql:// URL (default: {CONSOLE_DB}, never QTUNE_DB)",
    )
    console.set_defaults(func=cmd_console)


def _user_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a user id: {text!r}") from None
    if not 0 < value < 2**63:
        raise argparse.ArgumentTypeError(f"not a user id: {text!r}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()  # validate before importing discord.py: fail fast
    settings.require_token()
    from bot.app.runner import run_bot

    return run_bot(settings)


def cmd_qtable(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    db = _database(args.db, settings)
    if not is_postgres_url(db) and not Path(db).exists():
        raise ConfigError(f"no database at {db} (QTUNE_DB); the bot has not stored anything yet")
    view = asyncio.run(_read_table(settings, db, args.user_id))
    if args.json:
        doc = {**table_dict(view), "learned": bool(view.learned)}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif not view.learned:
        # A table of starting values and a "policy" would look like knowledge.
        sys.stdout.write(
            f"User {view.user_id} · no data yet: no reactions and no /simulate, "
            "so there is nothing learned to show.\n"
        )
    else:
        sys.stdout.write(
            f"User {view.user_id} · {table_summary(view)}\n"
            f"{format_q_table(view.genres, view.q, view.policy)}\n"
            f"(* = best next genre)  policy: {format_policy(view.policy)}\n"
        )
    return 0


def _database(given: str | None, settings: Settings) -> str:
    """``--db`` if given (a path or a PostgreSQL URL, checked), else QTUNE_DB."""
    if not given:
        return settings.database
    try:
        return check_target(given)
    except StorageError as exc:
        raise ConfigError(f"--db: {exc}") from None


async def _read_table(settings: Settings, db: str, user_id: int) -> TableView:
    service, storage = await open_service(settings, db, cpu=False)
    try:
        return await service.table(user_id)
    finally:
        await storage.close()


def cmd_console(args: argparse.Namespace) -> int:
    from bot.cli.console import CONSOLE_USER_ID, run_console

    settings = Settings.from_env()
    user_id = args.user_id if args.user_id is not None else CONSOLE_USER_ID
    if user_id <= 0:
        raise InvalidRequest("--user-id must be positive")
    db = _database(args.db, settings) if args.db else CONSOLE_DB
    return run_console(settings, db_path=db, user_id=user_id)
