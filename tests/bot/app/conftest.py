"""Fixtures for the app tests: the real service on a real SQLite file, endpoints restored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import pytest

from bot.config import Settings, open_service
from bot.service import QTuneService


@pytest.fixture(autouse=True)
def restore_endpoints() -> Iterator[None]:
    """The bot sets discord.py's process-wide endpoints from its settings."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[QTuneService]:
    svc, storage = await open_service(Settings(db_path=tmp_path / "app.db"), cpu=False)
    yield svc
    await storage.close()
