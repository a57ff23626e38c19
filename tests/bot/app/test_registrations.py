"""bot/app/registrations.py: which guild is checked for doubled commands, and the warning."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import discord

from bot.app.registrations import DEV_GUILD_KEY, warn_if_doubled


class Meta:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.data.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.data[key] = value


class Tree:
    """fetch_commands answers from a dict of scope -> names, like Discord would."""

    def __init__(self, registered: dict[int | None, list[str]], fail: bool = False) -> None:
        self.registered = registered
        self.fail = fail

    async def fetch_commands(self, *, guild: discord.abc.Snowflake | None = None) -> list:
        if self.fail:
            raise discord.HTTPException(SimpleNamespace(status=500, reason="x"), "down")
        names = self.registered.get(guild.id if guild else None, [])
        return [SimpleNamespace(name=n) for n in names]


async def test_dev_guild_doubles_are_named_and_remembered(caplog) -> None:
    meta = Meta()
    tree = Tree({None: ["help", "stats"], 5: ["help", "nowplaying"]})
    with caplog.at_level(logging.WARNING, logger="qtune"):
        assert await warn_if_doubled(tree, meta, 5) == ["help"]  # type: ignore[arg-type]
    assert meta.data[DEV_GUILD_KEY] == "5"
    assert "(/help)" in caplog.text
    assert "commands clear --global" in caplog.text


async def test_global_run_checks_the_last_dev_guild(caplog) -> None:
    meta = Meta()
    meta.data[DEV_GUILD_KEY] = "5"
    tree = Tree({None: ["help"], 5: ["help"]})
    with caplog.at_level(logging.WARNING, logger="qtune"):
        assert await warn_if_doubled(tree, meta, None) == ["help"]  # type: ignore[arg-type]
    assert "commands clear --guild 5" in caplog.text


async def test_nothing_to_check_or_discord_down() -> None:
    assert await warn_if_doubled(Tree({None: ["help"]}), Meta(), None) == []  # type: ignore[arg-type]
    down = Tree({}, fail=True)
    assert await warn_if_doubled(down, Meta(), 5) == []  # type: ignore[arg-type]
