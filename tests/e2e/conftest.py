"""Fixtures for the end-to-end tests: the fake Discord and the real bot pointed at it.

The bot reaches the fake only through its own configuration (``DISCORD_API_BASE``,
``DISCORD_GATEWAY_URL``), in-process (:func:`running_bot`) or as a real ``python -m bot``
subprocess (:class:`BotProcess`). When a test fails, what the fake received (and the bot's
output) is printed in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import discord
import pytest

from tests.e2e.fake_discord import FakeDiscord

REPO = Path(__file__).resolve().parents[2]
GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"
SUGGESTION = re.compile(r"Try \*\*(?P<genre>[^*]+)\*\*")


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
    return {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "QTUNE_DB": str(tmp_path / "qtune.sqlite3"),
        "QTUNE_DEV_GUILD": str(fake.guild_id),
        "QTUNE_GUILD_READY_TIMEOUT": "0.05",
        # Another helper may change the default learner; these tests check the seed's TD rule.
        "QTUNE_LEARNER": "seed",
        "QTUNE_LOG_LEVEL": "DEBUG",
    }


async def eventually(
    check: Callable[[], Awaitable[Any]],
    within: float = 10.0,
    what: str = "",
    dump: Callable[[], str] | None = None,
) -> Any:
    """Poll an async condition (every 10 ms) until it is truthy; fail with ``what``.

    ``dump`` (e.g. ``fake.dump``) is called on failure, so the message shows the end state.
    """
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            detail = dump() if dump is not None else ""
            raise AssertionError(f"not true within {within}s: {what} (last: {last!r})\n{detail}")
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- in-process bot
class InProcessBot:
    """The bot built by ``bot.app.bot.build_bot`` running in the test's event loop."""

    def __init__(self, bot: Any, task: asyncio.Task, fake: FakeDiscord) -> None:
        self.bot = bot
        self.task = task
        self.fake = fake
        self.completed: list[tuple[str, int]] = []  # (command name, interaction id)
        self._completed_changed = asyncio.Event()
        bot.add_listener(self._on_completion, "on_app_command_completion")

    async def _on_completion(self, interaction: discord.Interaction, command: Any) -> None:
        self.completed.append((command.qualified_name, interaction.id))
        self._completed_changed.set()

    @property
    def service(self) -> Any:
        return self.bot.service

    async def wait_completed(self, interaction_id: int, within: float = 10.0) -> None:
        """Wait for the bot's ``app_command_completion`` event of one interaction."""
        deadline = time.monotonic() + within
        while not any(i == interaction_id for _, i in self.completed):
            left = deadline - time.monotonic()
            if left <= 0 or self.task.done():
                raise AssertionError(
                    f"interaction {interaction_id} never completed\n{self.fake.dump()}"
                )
            self._completed_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._completed_changed.wait(), min(left, 0.5))

    async def nowplaying(self, user_id: int, genre: str = "rock") -> tuple[Any, Any]:
        """Run ``/nowplaying genre``, wait until it completed; return (interaction, message)."""
        inter = await self.fake.send_command("nowplaying", {"genre": genre}, user_id=user_id)
        await self.wait_completed(inter.id)
        msg = await self.fake.wait_for_reactions(
            inter.original_message_id, [THUMBS_UP, THUMBS_DOWN]
        )
        return inter, msg

    async def rewards(self, user_id: int) -> int:
        return (await self.service.table(user_id)).rewards


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, env: dict[str, str]) -> AsyncIterator[InProcessBot]:
    """Build the bot from ``env`` with the project's own code and run it until the block ends.

    discord.py's endpoints are process-global class attributes that the bot sets from its
    settings; they are restored afterwards.
    """
    from bot.app.bot import build_bot
    from bot.config import Settings

    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    settings = Settings.from_env(env)
    bot = build_bot(settings)
    task = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]), name="e2e-bot")
    handle = InProcessBot(bot, task, fake)
    try:
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=15, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task.done() and task.exception() is not None:
                raise AssertionError(f"bot failed to start: {task.exception()!r}\n{fake.dump()}")
            raise AssertionError(f"bot never became ready\n{fake.dump()}")
        yield handle
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="qtune")
    caplog.set_level(logging.DEBUG, logger="discord")
    return caplog


# --------------------------------------------------------------------------- subprocess bot
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


class BotProcess:
    """``python -m bot`` as a child process; its output is collected as it arrives."""

    def __init__(self, env: dict[str, str], cwd: Path, args: tuple[str, ...] = ()) -> None:
        self.env = subprocess_env(env)
        self.cwd = cwd
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout = ""
        self.stderr = ""
        self._readers: list[asyncio.Task] = []
        self._changed = asyncio.Event()

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, "stdout")),
            asyncio.create_task(self._read(self.proc.stderr, "stderr")),
        ]
        return self

    async def _read(self, stream: asyncio.StreamReader | None, name: str) -> None:
        assert stream is not None
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            setattr(self, name, getattr(self, name) + chunk.decode(errors="replace"))
            self._changed.set()

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.returncode
        return (
            f"---- bot process (rc={rc}) stdout ----\n{self.stdout}\n"
            f"---- stderr ----\n{self.stderr}"
        )

    async def wait_output(self, pattern: str, within: float = 15.0, *, count: int = 1) -> None:
        """Wait until ``pattern`` (a regex) appears ``count`` times in the output."""
        deadline = time.monotonic() + within
        rx = re.compile(pattern)
        while len(rx.findall(self.output)) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc is not None and self.proc.returncode is not None):
                if len(rx.findall(self.output)) >= count:
                    return
                raise AssertionError(f"no {pattern!r} (x{count}) in the output\n{self.describe()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))

    async def wait(self, within: float = 20.0) -> int:
        assert self.proc is not None
        try:
            rc = await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(f"bot did not exit within {within}s\n{self.describe()}") from None
        await asyncio.gather(*self._readers, return_exceptions=True)
        return rc

    async def terminate(self, within: float = 20.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait(within)

    async def kill(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        return await self.wait(10)

    async def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 10)
        for task in self._readers:
            task.cancel()


@pytest.fixture
async def processes(request: pytest.FixtureRequest, tmp_path: Path):
    """Start bot subprocesses with ``await spawn(env)``; all are killed at the end."""
    started: list[BotProcess] = []

    async def spawn(env: dict[str, str], *args: str) -> BotProcess:
        proc = await BotProcess(env, tmp_path, args).start()
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        await proc.ensure_dead()
    if failed(request):
        for number, proc in enumerate(started, 1):
            print(f"==== bot process #{number} ====")
            print(proc.describe())


async def open_service_for(env: dict[str, str]) -> tuple[Any, Any]:
    """The project's own service on the bot's database (for checking what was stored)."""
    from bot.config import Settings, open_service

    return await open_service(Settings.from_env(env))
