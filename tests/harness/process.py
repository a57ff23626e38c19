"""The bot as a real ``python -m bot`` child process, with its output as a stream of lines.

Output goes through pipes enlarged to 1 MiB (Linux), read by the event loop as it arrives,
so a busy driver that reads late does not block the bot's logging calls. Each line is kept
with its arrival time; listeners see lines as they come (the load benchmark parses its
loop-lag lines that way) and :meth:`BotProcess.wait_output` wakes on new lines, not on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.fakediscord import FakeDiscord
from tests.fakediscord.changes import Changes
from tests.harness.env import subprocess_env

PIPE_SIZE = 1 << 20
OUTPUT = "output"


@dataclass(frozen=True)
class Line:
    at: float  # time.monotonic() when it arrived
    stream: str  # "stdout" or "stderr"
    text: str


def _pipe() -> tuple[IO[bytes], int]:
    """A pipe as (read file, write fd), as large as the system allows up to ``PIPE_SIZE``."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    return os.fdopen(read_fd, "rb", buffering=0), write_fd


class BotProcess:
    """``python -m bot`` (or ``command``) as a child process; its output is collected."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        args: Sequence[str] = (),
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        self.env = subprocess_env(env)
        self.cwd = cwd
        self.command = [*(command or (sys.executable, "-m", "bot")), *args]
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[Line] = []
        self.listeners: list[Callable[[Line], None]] = []
        self.changes = Changes()
        self._readers: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ running
    async def start(self) -> BotProcess:
        loop = asyncio.get_running_loop()
        out_read, out_write = _pipe()
        err_read, err_write = _pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
            )
        finally:
            os.close(out_write)
            os.close(err_write)
        for name, pipe in (("stdout", out_read), ("stderr", err_read)):
            reader = asyncio.StreamReader(limit=PIPE_SIZE)
            await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r), pipe)
            self._readers.append(asyncio.create_task(self._read(reader, name)))
        return self

    async def _read(self, stream: asyncio.StreamReader, name: str) -> None:
        partial = b""
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            now = time.monotonic()
            *complete, partial = (partial + chunk).split(b"\n")
            for raw in complete:
                self._add(Line(now, name, raw.decode(errors="replace")))
        if partial:
            self._add(Line(time.monotonic(), name, partial.decode(errors="replace")))
        self.changes.notify(OUTPUT)

    def _add(self, line: Line) -> None:
        self.lines.append(line)
        for listener in self.listeners:
            listener(line)
        self.changes.notify(OUTPUT)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def finished(self) -> bool:
        """The process has exited and all its output has been read."""
        return (not self.running) and all(r.done() for r in self._readers)

    # ------------------------------------------------------------------ output
    def text(self, stream: str) -> str:
        return "".join(ln.text + "\n" for ln in self.lines if ln.stream == stream)

    @property
    def stdout(self) -> str:
        return self.text("stdout")

    @property
    def stderr(self) -> str:
        return self.text("stderr")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self, tail: int | None = None) -> str:
        rc = None if self.proc is None else self.proc.returncode
        if tail is not None:
            shown = "\n  ".join(ln.text for ln in self.lines[-tail:])
            return f"bot process (rc={rc}), last {tail} output lines:\n  {shown}"
        return (
            f"---- bot process (rc={rc}) stdout ----\n{self.stdout}\n"
            f"---- stderr ----\n{self.stderr}"
        )

    async def wait_output(self, pattern: str, within: float = 15.0, *, count: int = 1) -> None:
        """Wait until ``pattern`` (a regex, matched per line) has appeared ``count`` times."""
        rx = re.compile(pattern)
        seen = position = 0

        def enough() -> bool:
            nonlocal seen, position
            while position < len(self.lines):
                seen += len(rx.findall(self.lines[position].text))
                position += 1
            return seen >= count

        try:
            await self.changes.wait_for(enough, within, OUTPUT, give_up=lambda: self.finished)
        except TimeoutError:
            raise AssertionError(
                f"no {pattern!r} (x{count}) in the output\n{self.describe()}"
            ) from None

    # ------------------------------------------------------------------ stopping
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

    async def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM; SIGKILL if it has not exited after ``within`` seconds. The exit code."""
        if self.proc is None:
            return None
        try:
            return await self.terminate(within)
        except AssertionError:
            return await self.kill()

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

    # ------------------------------------------------------------------ start-up
    async def start_and_wait_ready(self, fake: FakeDiscord, within: float = 20.0) -> BotProcess:
        """Start, then wait until the bot identified on ``fake`` and logged "connected as"."""
        sessions = len(fake.sessions)
        await self.start()
        identified = asyncio.ensure_future(
            fake.wait_until(
                lambda: any(s.identified for s in fake.sessions[sessions:]),
                within=within,
                what="the bot to identify on the gateway",
            )
        )
        assert self.proc is not None
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({identified, exited}, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if not identified.done():
            identified.cancel()
            await asyncio.gather(*self._readers, return_exceptions=True)
            raise AssertionError(f"the bot exited before identifying\n{self.describe()}")
        identified.result()
        await self.wait_output(r"connected as", within=within)
        return self

    # ------------------------------------------------------------------ /proc figures
    def memory_kib(self) -> dict[str, int]:
        """VmHWM (peak) and VmRSS of the process, in KiB, from /proc."""
        out: dict[str, int] = {}
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    if key in ("VmHWM", "VmRSS"):
                        out[key] = int(value.split()[0])
        except OSError:
            pass
        return out

    def reset_peak_memory(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far, from /proc/<pid>/stat."""
        return cpu_seconds(self.pid)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
