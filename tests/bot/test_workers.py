"""The worker process pool: real processes, real PNGs, and a kill that never waits."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import numpy as np
import pytest

from bot.workers import BrokenProcessPool, CpuPool, render_curve_png, render_qtable_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _crash() -> None:
    os._exit(3)


@pytest.fixture
def pool():
    p = CpuPool()
    yield p
    p.terminate()


async def test_work_runs_in_another_process(pool: CpuPool) -> None:
    assert await pool.run(_sleep_then_pid, 0) != os.getpid()


async def test_join_after_terminate_waits_for_the_pools_own_thread(pool: CpuPool) -> None:
    """Else the interpreter's exit hook may write to a pipe that thread is closing (EBADF)."""
    from concurrent.futures import process

    await pool.run(os.getpid)
    pool.terminate()
    assert await asyncio.to_thread(pool.join, 20)
    assert not [t for t in list(process._threads_wakeups) if t.is_alive()]


async def test_terminate_does_not_wait_for_a_start_in_progress(pool: CpuPool) -> None:
    """A start holds the pool's lock while the forkserver imports numpy and matplotlib, and
    terminate() runs on the event loop at shutdown: it must not wait for that lock."""
    await pool.run(os.getpid)
    executor = pool._pool
    assert executor is not None
    returned = threading.Event()
    with executor._shutdown_lock:  # held, as the start-up thread holds it mid-start
        caller = threading.Thread(target=lambda: (pool.terminate(), returned.set()))
        caller.start()
        assert returned.wait(20), "terminate() waited for the pool's lock"
    caller.join(20)
    assert await asyncio.to_thread(pool.join, 20)  # and the shutdown finished after it


def _priority() -> tuple[int | None, int]:
    """This process's scheduling policy (None where there is none to read) and nice value."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    return policy, os.nice(0)


_BEFORE_ANY_POOL = _priority()  # at import, before a fixture makes a pool


async def test_the_worker_runs_only_when_a_core_is_free(pool: CpuPool) -> None:
    policy, nice = await pool.run(_priority)
    if hasattr(os, "SCHED_IDLE"):  # Linux
        assert policy == os.SCHED_IDLE
    else:  # the fallback: a lower priority
        assert nice >= pool.nice
    # The bot's own process is untouched: as it was before any pool existed (not "unlike
    # the worker", which fails when the tests themselves run under SCHED_IDLE).
    assert _priority() == _BEFORE_ANY_POOL


async def test_renders_real_pngs_in_the_worker(pool: CpuPool) -> None:
    genres = ("Pop", "Rock", "Jazz")
    table_png, curve_png = await asyncio.gather(
        pool.run(render_qtable_png, genres, np.eye(3), "Q-table for someone"),
        pool.run(render_curve_png, np.tile([10.0, -5.0, 1.0], 100), "pop_lover"),
    )
    for png in (table_png, curve_png):
        assert png.startswith(PNG_MAGIC)
        assert len(png) > 1000


async def test_terminate_stops_running_work_and_refuses_more(pool: CpuPool) -> None:
    await pool.run(_sleep_then_pid, 0)  # the worker is up
    job = asyncio.ensure_future(pool.run(_sleep_then_pid, 60))
    await asyncio.sleep(0.2)
    pool.terminate()
    with pytest.raises((BrokenProcessPool, asyncio.CancelledError)):
        await asyncio.wait_for(job, 20)  # far less than the job's 60 s
    with pytest.raises(RuntimeError):
        await pool.run(_sleep_then_pid, 0)


async def test_a_crashed_worker_is_replaced(pool: CpuPool) -> None:
    with pytest.raises(BrokenProcessPool):
        await pool.run(_crash)
    assert await pool.run(_sleep_then_pid, 0) != os.getpid()


async def test_a_worker_restart_is_logged(pool: CpuPool, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(BrokenProcessPool):
        await pool.run(_crash)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "worker process died running _crash" in warnings[0].getMessage()


async def test_a_terminated_pool_is_not_a_restart(
    pool: CpuPool, caplog: pytest.LogCaptureFixture
) -> None:
    await pool.run(_sleep_then_pid, 0)
    job = asyncio.ensure_future(pool.run(_sleep_then_pid, 60))
    await asyncio.sleep(0.2)
    pool.terminate()  # shutdown: expected, not worth a warning
    with pytest.raises((BrokenProcessPool, asyncio.CancelledError)):
        await asyncio.wait_for(job, 20)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_curve_worker_draws_the_best_line_only_for_known_listeners() -> None:
    """Built-in names get the best-reward line; anything else (a path) is never resolved."""
    from bot.workers import render_curve_png

    rewards = np.full(40, 10.0)
    plain = render_curve_png(rewards, "t")
    with_best = render_curve_png(rewards, "t", "pop_lover", ("Pop", "Rock", "Jazz"))
    assert with_best != plain
    assert render_curve_png(rewards, "t", "/etc/passwd", ("Pop", "Rock")) == plain


def _imported(name: str) -> bool:
    import sys

    return name in sys.modules


async def test_start_warms_the_worker(pool: CpuPool) -> None:
    """After start() the worker runs and has matplotlib loaded: the first chart is warm."""
    await pool.start()
    assert pool.warm
    assert await pool.run(_imported, "matplotlib")
    pids = {await pool.run(_sleep_then_pid, 0) for _ in range(3)}
    assert len(pids) == 1
    assert os.getpid() not in pids


async def test_start_leaves_the_event_loop_free(
    pool: CpuPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocking part of start() (making the process) runs on a thread: the loop keeps
    running meanwhile. The spawn below waits for the loop to run a callback; were it on
    the loop, that callback could not run and the spawn would give up."""
    loop_ran = threading.Event()
    spawned_on: list[int] = []
    real_spawn = CpuPool._spawn

    def spawn(self: CpuPool) -> None:
        spawned_on.append(threading.get_ident())
        asyncio.run_coroutine_threadsafe(_set(loop_ran), loop)
        if not loop_ran.wait(20):
            raise RuntimeError("the event loop did not run while the worker started")
        real_spawn(self)

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(CpuPool, "_spawn", spawn)
    await pool.start()
    assert spawned_on
    assert spawned_on[0] != threading.get_ident()
    assert loop_ran.is_set()
    assert pool.warm


async def _set(event: threading.Event) -> None:
    event.set()


async def test_a_call_during_start_uses_the_warming_worker(pool: CpuPool) -> None:
    """A chart asked for while the worker starts waits for it: one process, not two."""
    starting = asyncio.ensure_future(pool.start())
    pid = await pool.run(_sleep_then_pid, 0)
    await starting
    assert pool.warm
    assert await pool.run(_sleep_then_pid, 0) == pid


async def test_terminate_during_start_is_quiet(
    pool: CpuPool, caplog: pytest.LogCaptureFixture
) -> None:
    starting = asyncio.ensure_future(pool.start())
    await asyncio.sleep(0)
    pool.terminate()
    await asyncio.wait_for(starting, 30)
    assert not pool.warm
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


KILLED_BOT = """
import asyncio, os, signal
from bot.workers import CpuPool

async def main():
    pool = CpuPool()
    await pool.start()
    print("warm" if pool.warm else "cold", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_worker_ends_with_a_killed_bot(tmp_path) -> None:
    """kill -9 of the bot: its worker (and so the forkserver) must not outlive it. It held
    the bot's stdout open, so whoever read the bot's output never saw it end (the cluster
    test's kill -9 hung on that once the worker started at start-up)."""
    import subprocess
    import sys

    script = tmp_path / "killed_bot.py"
    script.write_text(KILLED_BOT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"warm\n"
    reader = threading.Thread(target=proc.stdout.read, daemon=True)
    reader.start()
    reader.join(30)  # end-of-file once every holder of the pipe is gone
    assert not reader.is_alive(), "a process of the killed bot still holds its stdout"
    assert proc.wait(10) == -9
