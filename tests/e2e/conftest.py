"""Fixtures for the end-to-end tests: the fake Discord and the real bot pointed at it.

The helpers themselves live in :mod:`tests.harness` and :mod:`tests.fakediscord` (the load
benchmark uses them too); this file only wires them into pytest. When a test fails, what
the fake received (and each bot process's output) is printed in the report.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import BotProcess, bot_environment

Spawn = Callable[..., Awaitable[BotProcess]]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(
        getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A fresh fake Discord on 127.0.0.1; what it received is printed when the test fails."""
    async with FakeDiscord() as server:
        yield server
        if failed(request):
            print(server.dump())


@pytest.fixture
def bot_env(fake: FakeDiscord, tmp_path: Path) -> dict[str, str]:
    """The bot's settings as environment variables, pointing at the fake."""
    return bot_environment(
        fake,
        tmp_path / "qtune.sqlite3",
        # Another helper may change the default learner; these tests check the seed's TD rule.
        QTUNE_LEARNER="seed",
        QTUNE_LOG_LEVEL="DEBUG",
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="qtune")
    caplog.set_level(logging.DEBUG, logger="discord")
    return caplog


@pytest.fixture
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start bot subprocesses with ``await spawn(env)``; all are killed at the end.

    ``await spawn(env, *args, ready=fake)`` also waits until the bot is connected to ``fake``.
    """
    started: list[BotProcess] = []

    async def spawn(
        env: dict[str, str], *args: str, ready: FakeDiscord | None = None
    ) -> BotProcess:
        proc = BotProcess(env, tmp_path, args)
        started.append(proc)
        if ready is not None:
            return await proc.start_and_wait_ready(ready)
        return await proc.start()

    yield spawn
    for proc in started:
        await proc.ensure_dead()
    if failed(request):
        for number, proc in enumerate(started, 1):
            print(f"==== bot process #{number} ====")
            print(proc.describe())
