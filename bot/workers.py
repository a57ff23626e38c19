"""CPU-heavy work (simulations, chart rendering) in a worker process.

Threads are not enough: training and matplotlib are mostly Python code, so a worker
thread holds the GIL and the event loop stalls (measured: 14 s of loop lag with five
`/simulate` runs in threads, 41 ms with one niced worker process). The worker process
runs at the lowest priority and ends with the bot. The bot starts and warms it at
start-up (:meth:`CpuPool.start`), so the first /qtable does not pay for a cold process
(forkserver, numpy and matplotlib imports, the font cache: seconds on a busy machine).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("qtune.workers")

__all__ = [
    "BrokenProcessPool",
    "CpuPool",
    "render_curve_png",
    "render_qtable_png",
    "render_stats_png",
    "warm_up",
]


PRELOAD = ("bot.engine.training", "bot.render.charts", "bot.render.stats")
"""Imported by the forkserver before it forks a worker (numpy, matplotlib): a worker
restarted after a crash, or the next pool in the same process, starts with them loaded."""


def _worker_init(nice: int, bot_pid: int) -> None:
    """Lower the worker's priority, so the bot's own process wins the cores; end with the
    bot (:func:`_exit_with`).

    Linux's ``SCHED_IDLE`` where there is one: a waking bot then takes the core at once,
    where under a nice value it may wait for the worker's time slice. Measured 2026-12-01,
    200 users with five ``/simulate`` runs beside them, five runs each way: the bot's p99
    was 21-63 ms (median 26) against 28-91 ms (median 56) at nice 10. The worker still
    runs whenever a core is free; only a saturated bot makes ``/simulate`` wait.
    """
    threading.Thread(
        target=_exit_with, args=(bot_pid,), name="qtune-bot-watch", daemon=True
    ).start()
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed
        with contextlib.suppress(OSError):
            os.nice(nice)


def _exit_with(pid: int) -> None:
    """In the worker: exit as soon as the bot process ``pid`` is gone.

    A bot killed with SIGKILL left its worker (and so the forkserver) running: a pool
    worker holds both ends of its own call queue, so it never reads end-of-file, and it
    kept the bot's stdout and stderr open, so whoever read them (a supervisor, the tests)
    never saw the bot end. A pidfd wakes exactly when the bot exits; where there is none,
    the bot is checked every second.
    """
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while pid_alive(pid):
            time.sleep(1.0)
    else:
        select.select([fd], [], [])
    os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal still counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CpuPool:
    """A small process pool for CPU-bound calls; arguments and results must pickle."""

    def __init__(self, workers: int = 1, nice: int = 10) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()  # start() makes the pool on a thread
        self._starting: asyncio.Task[None] | None = None
        self.warm = False
        """True once :meth:`start` has run its warm-up in the worker."""
        self._stopping = False  # terminate() ran: join() waits for the pool's thread
        self._stopper: threading.Thread | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if self._pool is None:
                # forkserver: the bot process has threads, and fork() with threads is unsafe.
                # The server imports the heavy modules once; every worker forks with them.
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(list(PRELOAD))
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_worker_init,
                    initargs=(self.nice, os.getpid()),
                )
            return self._pool

    def _spawn(self) -> None:
        """Make the pool and its processes (blocking: the forkserver starts, then forks)."""
        self._executor().submit(os.getpid).result()

    async def start(self) -> None:
        """Start the worker process and warm it (imports, a first chart), off the loop.

        Starting a process blocks its caller (the forkserver is started and answers), so
        that part runs on a thread; the warm-up runs in the worker itself. A call to
        :meth:`run` meanwhile waits for it instead of starting a second process. Failing
        to warm is not fatal: the first real call starts the worker as before.
        """
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        try:
            await asyncio.to_thread(self._spawn)
            await self.run(warm_up)
            self.warm = True
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            if not self._closed:
                log.warning("warming the worker process failed: %s", exc)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in the worker; a crashed worker is replaced next time."""
        starting = self._starting
        if starting is not None and not starting.done() and fn is not warm_up:
            await asyncio.shield(starting)  # never make the pool on the loop meanwhile
        pool = self._executor()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                if not self._closed:
                    log.warning(
                        "the worker process died running %s; a new one starts with the next call",
                        getattr(fn, "__name__", fn),
                    )
            raise

    def terminate(self) -> None:
        """Kill running work and refuse new work: used at shutdown, so it never waits.

        The pool's own ``shutdown`` runs on a thread of its own: it takes the pool's lock,
        which the start-up thread holds while the worker process starts (the forkserver
        imports numpy and matplotlib first), so on the event loop it blocked the loop for
        the whole start (seconds on a busy machine; minutes under ``tracemalloc``).
        :meth:`join` waits for that thread too.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is None:
            return
        self._stopping = True
        # ProcessPoolExecutor has no public way to stop a running call before Python 3.14.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()
        self._stopper = threading.Thread(
            target=pool.shutdown,
            kwargs={"wait": False, "cancel_futures": True},
            name="qtune-pool-stop",
            daemon=True,
        )
        self._stopper.start()

    def join(self, timeout: float) -> bool:
        """After :meth:`terminate`, wait up to ``timeout`` seconds for its shutdown and the
        process pools' manager threads to end; True if they did. Blocking: call it off the
        event loop.

        The interpreter's exit hook for process pools (``concurrent.futures.process.
        _python_exit``, CPython 3.11) writes to each manager thread's wake-up pipe without
        its lock, so a thread still closing that pipe at exit makes it print a traceback
        (EBADF): 1 in 4 bots stopped right after start-up, while the worker was starting.
        The thread may not exist yet when :meth:`terminate` runs (the pool starts it after
        its first process), so the threads are found where that hook finds them.
        """
        if not self._stopping:
            return True
        from concurrent.futures import process  # its registry of manager threads

        deadline = time.monotonic() + timeout
        if self._stopper is not None:  # the manager thread exists once the start is over
            self._stopper.join(timeout)
        threads = list(process._threads_wakeups)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


def warm_up() -> int:
    """In the worker: draw one small chart, so the first real call finds matplotlib's
    renderer and fonts loaded (the modules come with the fork, see :data:`PRELOAD`)."""
    import numpy as np

    from bot.render.charts import qtable_png

    qtable_png(("A", "B"), np.zeros((2, 2)), title="warm-up")
    return os.getpid()


def render_qtable_png(genres: tuple[str, ...], q: Any, title: str) -> bytes:
    """The /qtable heatmap; matplotlib is imported here, in the worker, not in the bot."""
    from bot.render.charts import qtable_png

    return qtable_png(genres, q, title=title)


def render_curve_png(
    rewards: Any, title: str, user: str | None = None, genres: tuple[str, ...] | None = None
) -> bytes:
    """The /simulate learning curve, rendered in the worker; with the simulated ``user``
    named, it also draws the best mean reward that listener allows."""
    from bot.engine.listeners import BUILTIN_PROFILES, best_mean_reward, resolve_user
    from bot.render.charts import learning_curve_png

    best = None
    # Built-in names only: a path here would read a file on the bot's machine.
    if genres is not None and user in ("generic", *BUILTIN_PROFILES):
        best = best_mean_reward(resolve_user(str(user), genres).expected_rewards(genres))
    return learning_curve_png(rewards, title=title, best=best)


def render_stats_png(
    genres: tuple[str, ...],
    actions: list[str],
    liked: list[bool],
    beliefs: dict[str, str | None],
    title: str,
) -> bytes:
    """The /stats picture of one member, rendered in the worker."""
    from bot.render.stats import user_stats_png

    return user_stats_png(genres, actions, liked, beliefs, title)
