"""``python -m bot copy-db SOURCE DEST [--force]``: move a database to another backend.

SOURCE and DEST are each a SQLite file path or a ``postgresql://`` URL, in either
direction. Every user, recommendation and metadata row is copied as stored (page by
page, each page one transaction in DEST), then the row counts of both are compared.
A DEST that already holds users or recommendations is refused (exit 2, one line) unless
``--force``, which first empties it. Stop the bot while copying: rows written to SOURCE
meanwhile would be missed (the count check would then fail).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.errors import QTuneError
from storage.base import COPIED_TABLES, Storage, StorageError
from storage.factory import check_target, describe, is_postgres_url, open_storage

PAGE = 1000


class CopyError(QTuneError):
    """copy-db cannot go ahead, or the copy does not match (one line, exit 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "copy-db",
        help="copy every user and recommendation to another database (SQLite ⇄ PostgreSQL)",
        description=(
            "Copy every user, recommendation and metadata row from SOURCE to DEST (each a "
            "SQLite file path or a postgresql:// URL), then check the row counts. Stop the "
            "bot first."
        ),
    )
    parser.add_argument("source", help="the database to copy from (path or URL)")
    parser.add_argument("dest", help="the database to copy to (path or URL; created if new)")
    parser.add_argument(
        "--force", action="store_true", help="empty DEST first if it already holds data"
    )
    parser.set_defaults(func=cmd_copy_db)


def cmd_copy_db(args: argparse.Namespace) -> int:
    counts = asyncio.run(copy_db(args.source, args.dest, force=args.force))
    sys.stdout.write(
        f"copied {counts['users']:,} user(s) and {counts['recommendations']:,} "
        f"recommendation(s) from {describe(args.source)} to {describe(args.dest)}; "
        "counts match\n"
    )
    return 0


def _target(text: str, what: str) -> str:
    try:
        return check_target(text)
    except StorageError as exc:
        raise CopyError(f"{what}: {exc}") from None


async def copy_db(source: str, dest: str, *, force: bool = False) -> dict[str, int]:
    """Copy SOURCE into DEST; return the (matching) row counts."""
    source, dest = _preflight(source, dest)
    src = await open_storage(source)
    try:
        dst = await open_storage(dest)
        try:
            return await _copy(src, dst, dest, force)
        finally:
            await dst.close()
    finally:
        await src.close()


def _preflight(source: str, dest: str) -> tuple[str, str]:
    """Both targets checked: SOURCE exists (never created empty), DEST is another one."""
    source, dest = _target(source, "SOURCE"), _target(dest, "DEST")
    if not is_postgres_url(source) and not Path(source).is_file():
        raise CopyError(f"SOURCE: no database at {source}")
    if is_postgres_url(source) or is_postgres_url(dest):
        same = source == dest
    else:
        same = Path(dest).exists() and Path(source).resolve() == Path(dest).resolve()
    if same:
        raise CopyError("SOURCE and DEST are the same database")
    return source, dest


async def _copy(src: Storage, dst: Storage, dest: str, force: bool) -> dict[str, int]:
    held = await dst.counts()
    if any(held.values()):
        if not force:
            raise CopyError(
                f"DEST {describe(dest)} already holds {held['users']:,} user(s) and "
                f"{held['recommendations']:,} recommendation(s); pass --force to replace them"
            )
        await dst.clear()
    await dst.import_rows([], [], await src.export_meta())
    after: int | None = None
    while users := await src.export_users(after, PAGE):
        await dst.import_rows(users, [])
        after = users[-1].user_id
    after = None
    while recs := await src.export_recommendations(after, PAGE):
        await dst.import_rows([], recs)
        after = recs[-1].message_id
    want, got = await src.counts(), await dst.counts()
    if want != got:
        detail = ", ".join(f"{t} {want[t]:,} → {got[t]:,}" for t in COPIED_TABLES)
        raise CopyError(f"the copy does not match ({detail}); was the bot still running?")
    return got
