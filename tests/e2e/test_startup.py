"""Scenarios 1 and 9: start-up (command sync once, no token in logs) and bad configuration.

Both run ``python -m bot`` as a real subprocess, configured only through the environment.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import BotProcess

pytestmark = pytest.mark.timeout(60)

EXPECTED_COMMANDS = {"nowplaying", "qtable", "simulate", "reset", "help", "export", "stats"}


def command_syncs(fake: FakeDiscord, since: int = 0) -> list:
    return [
        r
        for r in fake.requests[since:]
        if r.method == "PUT"
        and r.path.startswith("/applications/")
        and r.path.endswith("/commands")
    ]


async def test_startup_syncs_once_and_hides_the_token(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    first = await processes(bot_env, ready=fake)
    syncs = command_syncs(fake)
    assert len(syncs) == 1, fake.dump()
    assert syncs[0].path == f"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
    assert syncs[0].authorized
    assert {c["name"] for c in fake.commands[fake.guild_id]} == EXPECTED_COMMANDS
    assert None not in fake.commands, "nothing is synced globally when a dev guild is set"
    session = fake.active_session()
    assert session is not None
    assert session.intents == (1 << 0) | (1 << 10), "guilds + guild reactions, nothing else"
    assert await first.terminate() == 0, first.describe()

    mark = len(fake.requests)
    second = await processes(bot_env, ready=fake)
    assert command_syncs(fake, mark) == [], "unchanged commands were synced again"
    assert await second.terminate() == 0, second.describe()

    for proc in (first, second):
        assert "DEBUG" in proc.output, "the check below needs debug logging on"
        assert fake.token not in proc.output, "the token appeared in the bot's output"
        assert "Traceback" not in proc.output, proc.describe()


BAD_CONFIGS = {
    "no token": {"DISCORD_TOKEN": ""},
    "API base not a URL": {"DISCORD_API_BASE": "not a url"},
    "database is a directory": {"QTUNE_DB": "/"},  # opened before Discord is reached
}


async def test_bad_configuration_exits_2_with_one_line(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    async def run(name: str, change: dict[str, str]) -> tuple[str, BotProcess, int]:
        env = {**bot_env, "QTUNE_LOG_LEVEL": "INFO"}
        env.update(change)
        proc = await processes(env)
        return name, proc, await proc.wait(within=30)

    results = await asyncio.gather(*(run(n, c) for n, c in BAD_CONFIGS.items()))
    for name, proc, rc in results:
        lines = proc.stderr.strip().splitlines()
        assert rc == 2, f"{name}: exit code {rc}\n{proc.describe()}"
        assert len(lines) == 1, f"{name}: expected one line on stderr\n{proc.describe()}"
        assert "Traceback" not in proc.output, f"{name}\n{proc.describe()}"
        assert fake.token not in proc.output, f"{name}: the token was printed"
        print(f"{name}: {lines[0]}")
    assert not fake.requests, "a misconfigured bot must not reach Discord at all"
