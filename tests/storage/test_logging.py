"""What the storage tells the operator: schema creation and migrations, at INFO."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from storage.schema import MIGRATIONS, SCHEMA_VERSION
from storage.sqlite import SQLiteStorage


def infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "qtune.storage" and r.levelno == logging.INFO
    ]


async def test_a_new_database_logs_its_schema(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="qtune.storage")
    st = await SQLiteStorage.open(tmp_path / "new.db")
    await st.close()
    assert infos(caplog) == [f"database: created the schema to schema {SCHEMA_VERSION}"]
    caplog.clear()
    st = await SQLiteStorage.open(tmp_path / "new.db")  # up to date: nothing to say
    await st.close()
    assert infos(caplog) == []


async def test_a_migration_is_logged_with_both_versions(tmp_path: Path, caplog) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    caplog.set_level(logging.INFO, logger="qtune.storage")
    st = await SQLiteStorage.open(path)
    await st.close()
    assert infos(caplog) == [f"database: migrated from schema 1 to schema {SCHEMA_VERSION}"]
