"""Operator tasks (issue 13 §7) against the fake Discord: ``python -m bot commands list|clear``
as real subprocesses, and the start-up warning about commands registered twice."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import REPO, running_bot, subprocess_env

pytestmark = pytest.mark.timeout(90)

OPERATOR = 370_000_000_000_000_001


async def cli(env: dict[str, str], *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """``python -m bot ARGS`` in a child process; the fake keeps serving meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=REPO,
        env=subprocess_env(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def names(fake: FakeDiscord, scope: int | None) -> set[str]:
    return {c["name"] for c in fake.commands.get(scope, [])}


async def test_commands_list_and_clear(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    global_env = {**bot_env, "QTUNE_DEV_GUILD": ""}
    async with running_bot(fake, global_env):  # a global registration...
        pass
    async with running_bot(fake, bot_env):  # ...then the dev guild's: both are left
        pass
    assert names(fake, None) == names(fake, fake.guild_id) != set()

    rc, out, err = await cli(bot_env, "commands", "list")
    assert rc == 0, err
    assert out.splitlines()[0].startswith("global: /export, /help, /nowplaying")
    assert out.splitlines()[1].startswith(f"guild {fake.guild_id}: /export")
    assert "registered in both places" in out
    assert fake.token not in out + err

    # Not a terminal and no --yes: refuse, delete nothing.
    rc, out, err = await cli(bot_env, "commands", "clear", "--global")
    assert rc == 2
    assert err.strip() == "error: not clearing without confirmation: add --yes"
    assert names(fake, None)

    rc, out, err = await cli(bot_env, "commands", "clear", "--global", "--yes")
    assert rc == 0, err
    assert out.startswith("Deleted 7 command(s) registered globally: /export, /help")
    assert names(fake, None) == set()
    assert names(fake, fake.guild_id)  # the guild's registration is untouched

    rc, out, _ = await cli(bot_env, "commands", "clear", "--global", "--yes")
    assert (rc, out.strip()) == (0, "No commands are registered globally; nothing to clear.")

    rc, _, err = await cli(bot_env, "commands", "clear", "--guild", "ten")
    assert rc == 2
    assert "not a server id: 'ten'" in err
    assert "Traceback" not in err


async def test_clear_then_start_registers_again(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    async with running_bot(fake, bot_env):
        pass
    rc, _, err = await cli(bot_env, "commands", "clear", "--guild", str(fake.guild_id), "--yes")
    assert rc == 0, err
    assert names(fake, fake.guild_id) == set()
    async with running_bot(fake, bot_env) as qb:  # the same definitions, yet it syncs again
        assert qb.bot.commands_synced is True
    assert "help" in names(fake, fake.guild_id)


async def test_start_warns_about_double_registration(
    fake: FakeDiscord, bot_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qtune")
    async with running_bot(fake, {**bot_env, "QTUNE_DEV_GUILD": ""}):
        pass
    assert not [r for r in caplog.records if "registered globally and in guild" in r.getMessage()]
    async with running_bot(fake, bot_env):
        pass
    warned = [r for r in caplog.records if "registered globally and in guild" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert "python -m bot commands clear --global" in warned[0].getMessage()

    # Dev guild switched off again: the old guild copy is now the stale one.
    caplog.clear()
    async with running_bot(fake, {**bot_env, "QTUNE_DEV_GUILD": ""}):
        pass
    warned = [r for r in caplog.records if "registered globally and in guild" in r.getMessage()]
    assert len(warned) == 1
    assert f"commands clear --guild {fake.guild_id}" in warned[0].getMessage()
