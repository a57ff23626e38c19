"""The launcher: it builds the service before Discord is reached, exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import bot.app.logs as logs
from bot.app.runner import close_storage, run
from bot.app.sync import SYNC_HASH_KEY
from bot.config import Settings, open_service
from bot.errors import StorageError
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._configured)
    yield
    root.handlers[:], root.level, logs._configured = saved


def settings_for(fake: FakeDiscord, db: Path) -> Settings:
    return Settings(
        token=fake.token,
        db_path=db,
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
        dev_guild=fake.guild_id,
        guild_ready_timeout=0.05,
    )


@pytest.mark.usefixtures("restore_logging")
async def test_run_closes_gracefully_on_sigterm(tmp_path: Path) -> None:
    """``run`` against the loopback fake: SIGTERM → storage closed, exit code 0. A bot that
    shares its process (not ``process_main``) leaves the process's collector alone."""
    db = tmp_path / "q.db"
    gc.unfreeze()
    async with FakeDiscord() as fake:
        runner = asyncio.create_task(run(settings_for(fake, db)))
        await fake.wait_ready()
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(runner, 20) == 0
        await fake.wait_disconnected()
    assert gc.get_freeze_count() == 0
    # Closed cleanly: the last connection's close checkpoints and removes the WAL file.
    assert db.exists()
    assert not (tmp_path / "q.db-wal").exists()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    service, storage = await open_service(Settings(db_path=db))
    try:
        assert await service.get_meta(SYNC_HASH_KEY)  # the sync was recorded
    finally:
        await storage.close()


@pytest.mark.usefixtures("restore_logging")
async def test_a_bad_database_stops_the_start_before_discord(tmp_path: Path) -> None:
    """The launcher opens the storage first: an unusable one never reaches Discord."""
    db = tmp_path / "not-a-db"
    db.write_bytes(b"hello, this is not SQLite at all")
    async with FakeDiscord() as fake:
        with pytest.raises(StorageError, match="not a SQLite database"):
            await run(settings_for(fake, db))
        assert fake.requests == []
        assert fake.sessions == []
    assert db.read_bytes() == b"hello, this is not SQLite at all"


class StuckStorage:
    """A storage whose close never returns (a database that stopped answering)."""

    async def close(self) -> None:
        await asyncio.Event().wait()


async def test_closing_a_storage_that_does_not_answer_is_bounded(caplog) -> None:
    await asyncio.wait_for(close_storage(StuckStorage(), within=0.2), 10)  # type: ignore[arg-type]
    assert any("did not close within" in r.getMessage() for r in caplog.records)


WATCHDOG = """
import threading, time
from bot.app.runner import start_watchdog
threading.Thread(target=time.sleep, args=(600,)).start()  # holds the interpreter's exit
start_watchdog(0.5)
"""


def test_the_exit_watchdog_ends_a_process_whose_exit_hangs() -> None:
    """The last bound: after the deadline the process exits (code 1, one ERROR line), even
    when the interpreter's own exit waits on a thread that never ends."""
    proc = subprocess.run(
        [sys.executable, "-c", WATCHDOG], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1, proc.stderr
    assert "shutdown still not finished" in proc.stderr
    assert "Traceback" not in proc.stderr
