"""The bot in a cluster: an AutoShardedBot for QTUNE_SHARD_COUNT, and one bot process per
SQLite file (a second one is refused with one clear line)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from discord.ext import commands

from bot.app.bot import ShardedQTuneBot, build_bot
from bot.app.dblock import DatabaseLock
from bot.config import ConfigError, Settings


async def test_shard_settings_build_an_auto_sharded_bot() -> None:
    service: Any = SimpleNamespace(cancel_simulations=lambda: None)
    plain = build_bot(Settings(), service=service)
    assert not isinstance(plain, commands.AutoShardedBot)
    settings = Settings.from_env({"QTUNE_SHARD_COUNT": "4", "QTUNE_SHARD_IDS": "2,3"})
    sharded = build_bot(settings, service=service)
    assert isinstance(sharded, ShardedQTuneBot)
    assert isinstance(sharded, commands.AutoShardedBot)
    assert (sharded.shard_count, sharded.shard_ids) == (4, [2, 3])
    assert sharded.settings is settings  # the same QTuneBot underneath
    await plain.close()


def test_a_second_bot_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "q.sqlite3"
    first = DatabaseLock.take(db)
    assert first is not None
    with pytest.raises(ConfigError, match="another bot process already runs on") as err:
        DatabaseLock.take(db)
    assert "postgresql://" in str(err.value)
    assert "\n" not in str(err.value)
    assert DatabaseLock.take(tmp_path / "other.sqlite3") is not None  # another file is fine
    first.release()
    again = DatabaseLock.take(db)  # released: the next start may take it
    assert again is not None
    again.release()
