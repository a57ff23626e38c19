"""The bot's settings for a run against the fake, as an operator would give them: env vars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.fakediscord import FakeDiscord

REPO = Path(__file__).resolve().parents[2]


def bot_environment(fake: FakeDiscord, db: Path | str, **settings: str) -> dict[str, str]:
    """``DISCORD_*`` and ``QTUNE_*`` settings that point the bot at ``fake`` and ``db``.

    ``settings`` add to or override them (``QTUNE_COOLDOWN="0"``, ``QTUNE_LEARNER="seed"``).
    """
    env = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "QTUNE_DB": str(db),
        "QTUNE_DEV_GUILD": str(fake.guild_id),
        # discord.py waits this long for GUILD_CREATEs before on_ready (default 2 s).
        "QTUNE_GUILD_READY_TIMEOUT": "0.05",
    }
    env.update(settings)
    return env


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """A clean environment for ``python -m bot``: nothing inherited from DISCORD_/QTUNE_."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "QTUNE_", "PYTEST_", "COV_"))
    }
    base["PYTHONPATH"] = str(REPO) + os.pathsep + base.get("PYTHONPATH", "")
    base["MPLBACKEND"] = "Agg"
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env)
    return base


async def open_service_for(env: dict[str, str]) -> tuple[Any, Any]:
    """The project's own service on the bot's database (for checking what was stored)."""
    from bot.config import Settings, open_service

    return await open_service(Settings.from_env(env))
