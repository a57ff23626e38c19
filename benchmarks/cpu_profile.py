"""A main-thread CPU-clock sampler for a bot process, and the breakdown of what it saw.

    python benchmarks/cpu_profile.py --out prof.json -m bot      # run a module under it
    python benchmarks/cpu_profile.py --out prof.json floor_bot.py
    python benchmarks/cpu_profile.py report qtune.json floor.json # compare two profiles

Why not py-spy: it samples wall time and counts a thread that waits for a core (or for
fsync) as busy, which on a shared 2-core machine puts the bot's cost where its waits are.
Nor a sampling thread: it sees the main thread only when that releases the GIL, that is
almost always at the event loop's ``select`` or a socket write. This sampler is driven by
the CPU clock instead (``ITIMER_PROF``, see :class:`Sampler`) and charges the main thread's
own CPU time (``time.thread_time``) to the stack it interrupts. The other threads' CPU (the
SQLite thread, the resolver) is read from ``/proc/self/task``.

``benchmarks/e2e_load.py --profile DIR`` runs both bots under it: SIGUSR1 at the start of
the measured phase clears the counts, SIGUSR2 at its end writes the profile (JSON: the
collapsed stacks with their CPU seconds, and the per-thread CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

# The frames of the start-up path, below every task: cut, so a stack starts at its task.
OUTER = (
    "cpu_profile.py",
    "runpy.py",
    "bot/__main__.py",
    "bot/cli/",
    "bot/app/runner.py:run_bot",
    "asyncio/runners.py",
    "benchmarks/floor_bot.py:<module>",
)
OUTER_FUNCS = {"_run_once", "run_forever", "run_until_complete", "_run"}


SYSTEM = slice(12, 13)  # /proc/<pid>/task/<tid>/stat: stime


class Sampler:
    """Charges the main thread's CPU time to its stack, sample by sample.

    ``ITIMER_PROF`` sends SIGPROF every ``interval`` seconds of the process's CPU time; the
    handler runs in the main thread at its next bytecode and charges the main thread's CPU
    used since the previous sample (its own clock) to the stack it interrupted. A sample
    taken while the main thread waited (another thread used the CPU) charges about nothing.
    The handler's own time is left out. Stacks are kept as tuples of code objects and
    named only when the profile is written.
    """

    def __init__(self, out: Path, interval: float) -> None:
        self.out = out
        self.interval = interval
        self.stacks: dict[tuple[Any, ...], float] = defaultdict(float)
        self.started = time.monotonic()
        self.cpu_start = thread_cpu()
        self.sys_start = thread_cpu(SYSTEM)
        self.main_start = self.last = time.thread_time()
        self.main_ident = threading.main_thread().ident
        self.thread_last: dict[int, float] = {}

    def _sample(self, _sig: int, frame: FrameType | None) -> None:
        now = time.thread_time()
        self.stacks[codes_of(frame)] += now - self.last
        self._sample_threads()
        self.last = time.thread_time()

    def _sample_threads(self) -> None:
        """The other Python threads (the SQLite thread): their own clocks, their stacks
        now, under a ``[thread name]`` root. Coarser than the main thread's (a waiting
        thread is seen at its wait), but it says where their CPU goes."""
        frames = sys._current_frames()
        for thread in threading.enumerate():
            ident = thread.ident
            if ident is None or ident == self.main_ident:
                continue
            try:
                now = time.clock_gettime(time.pthread_getcpuclockid(ident))
            except (OSError, ProcessLookupError):
                continue
            last = self.thread_last.get(ident, now)
            self.thread_last[ident] = now
            if now > last:
                key = (f"[{thread.name}]", *codes_of(frames.get(ident)))
                self.stacks[key] += now - last

    def _reset(self, _sig: int, _frame: FrameType | None) -> None:
        self.stacks.clear()
        self.thread_last.clear()
        self.started, self.cpu_start = time.monotonic(), thread_cpu()
        self.sys_start = thread_cpu(SYSTEM)
        self.main_start = self.last = time.thread_time()

    def _dump(self, _sig: int, _frame: FrameType | None) -> None:
        try:
            self.write()
        except Exception:  # never raise into the code the signal interrupted
            traceback.print_exc()

    def write(self) -> None:
        main_cpu = time.thread_time() - self.main_start
        end = thread_cpu()
        threads = {
            ("main" if tid == os.getpid() else str(tid)): cpu - self.cpu_start.get(tid, 0.0)
            for tid, cpu in end.items()
        }
        system = {
            ("main" if tid == os.getpid() else str(tid)): cpu - self.sys_start.get(tid, 0.0)
            for tid, cpu in thread_cpu(SYSTEM).items()
        }
        stacks: dict[str, float] = defaultdict(float)
        for codes, seconds in list(self.stacks.items()):  # one C call: no sample inside
            stacks[stack_name(codes)] += seconds
        data = {
            "wall_s": time.monotonic() - self.started,
            "main_cpu_s": main_cpu,
            "threads_cpu_s": threads,
            "threads_system_s": system,
            "stacks": dict(stacks),
        }
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.out)

    def install(self) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        signal.signal(signal.SIGUSR1, self._reset)
        signal.signal(signal.SIGUSR2, self._dump)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)


def thread_cpu(which: slice = slice(11, 13)) -> dict[int, float]:
    """CPU seconds of every thread of this process, by thread id: user + system, or
    ``which`` of /proc's fields (``slice(12, 13)``: system time only)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = sum(int(x) for x in fields[which]) / ticks
    return out


def codes_of(frame: FrameType | None) -> tuple[Any, ...]:
    """The code objects of a stack, innermost first (cheap: no names yet)."""
    codes = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    return tuple(codes)


def stack_name(codes: Sequence[Any]) -> str:
    """``file:function;...`` from the outermost frame in, the start-up frames cut; another
    thread's stack starts with its ``[name]``."""
    root = codes[0] if codes and isinstance(codes[0], str) else None
    if root is not None:
        names = [f"{short_path(c.co_filename)}:{c.co_name}" for c in reversed(codes[1:])]
        return ";".join([root, *names])
    names = [f"{short_path(c.co_filename)}:{c.co_name}" for c in reversed(codes)]
    while names and (
        any(names[0].startswith(p) or f"/{p}" in names[0] for p in OUTER)
        or names[0].rsplit(":", 1)[1] in OUTER_FUNCS
        or names[0].startswith("<frozen runpy>")
    ):
        names.pop(0)
    return ";".join(names) or "(idle)"


def short_path(filename: str) -> str:
    """A file name from its package on: ``discord/http.py``, ``bot/service.py``."""
    for marker in ("site-packages/", "lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker.startswith("lib/") else tail
    for root in ("/bot/", "/cogs/", "/storage/", "/benchmarks/"):
        if root in filename:
            return root[1:] + filename.rsplit(root, 1)[1]
    return filename


# --------------------------------------------------------------------------- the report
# What the leaf (the running Python function) belongs to. Order matters: first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qtune: learner (bot/engine)", ("bot/engine/",)),
    ("qtune: storage (storage/)", ("storage/",)),
    ("qtune: service, explain", ("bot/service.py", "bot/explain.py", "bot/resilience.py")),
    ("qtune: app, cogs", ("bot/", "cogs/")),
    ("floor bot's own code", ("benchmarks/",)),
    ("numpy", ("numpy/",)),
    ("discord.py: gateway", ("discord/gateway.py",)),
    ("discord.py: HTTP (routes, rate limits)", ("discord/http.py",)),
    ("discord.py: state, parsing, models", ("discord/state.py", "discord/raw_models.py")),
    (
        "discord.py: interactions, app commands",
        ("discord/interactions.py", "discord/app_commands/", "discord/webhook/"),
    ),
    ("discord.py: client, dispatch", ("discord/client.py", "discord/ext/")),
    ("discord.py: other", ("discord/",)),
    ("aiohttp, yarl, multidict", ("aiohttp/", "yarl/", "multidict/")),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("asyncio, selectors", ("asyncio/", "selectors.py")),
    ("socket, ssl", ("socket.py", "ssl.py")),
    ("other", ("",)),
)


def category(stack: str) -> str:
    leaf = stack.rsplit(";", 1)[-1]
    for name, prefixes in CATEGORIES:
        if any(leaf.startswith(p) for p in prefixes):
            return name
    return "other"


def breakdown(profile: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per category of the leaf frame (the main thread's stacks)."""
    out: dict[str, float] = defaultdict(float)
    for stack, seconds in profile["stacks"].items():
        if not stack.startswith("["):
            out[category(stack)] += seconds
    return dict(out)


def under(profile: dict[str, Any], marker: str) -> float:
    """CPU seconds of the stacks that pass through a frame containing ``marker``."""
    return sum(s for stack, s in profile["stacks"].items() if marker in stack)


def report(paths: Sequence[Path], per: Sequence[int] | None = None) -> str:
    """The categories side by side, in ms per interaction when ``per`` gives the counts."""
    profiles = [json.loads(Path(p).read_text()) for p in paths]
    counts = list(per) if per else [1] * len(profiles)
    scale = [1000 / max(1, n) for n in counts]
    parts = [breakdown(p) for p in profiles]
    names = [n for n, _ in CATEGORIES if any(n in b for b in parts)]
    unit = "ms/interaction" if per else "CPU s"
    head = "  ".join(f"{Path(p).stem:>12s}" for p in paths)
    lines = [f"  main-thread CPU by the running function's package ({unit})", f"  {'':44s}{head}"]
    for name in names:
        cells = "  ".join(
            f"{b.get(name, 0.0) * k:12.3f}" for b, k in zip(parts, scale, strict=True)
        )
        lines.append(f"  {name:44s}{cells}")
    total = "  ".join(f"{sum(b.values()) * k:12.3f}" for b, k in zip(parts, scale, strict=True))
    lines.append(f"  {'main thread, sampled':44s}{total}")
    for label, key in (("main thread, clock", "main"), ("other threads", None)):
        cells = []
        for p, k in zip(profiles, scale, strict=True):
            threads = p["threads_cpu_s"]
            value = p["main_cpu_s"] if key else sum(v for t, v in threads.items() if t != "main")
            cells.append(f"{value * k:12.3f}")
        lines.append(f"  {label:44s}{'  '.join(cells)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        parser = argparse.ArgumentParser(prog="cpu_profile.py report")
        parser.add_argument("profiles", nargs="+", type=Path)
        parser.add_argument("--per", type=int, nargs="*", help="interactions of each profile")
        parser.add_argument("--top", type=int, default=0, help="also the N heaviest leaves")
        args = parser.parse_args(argv[1:])
        print(report(args.profiles, args.per))
        for path in args.profiles if args.top else ():
            print(top_leaves(json.loads(path.read_text()), args.top, path.stem))
        return 0
    parser = argparse.ArgumentParser(description="Run a script or module under the sampler.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("-m", dest="module", default=None)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    sampler = Sampler(args.out, args.interval)
    sampler.install()
    try:
        if args.module:
            sys.argv = [args.module, *args.rest]
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args.rest)
            sys.path.insert(0, str(Path(args.rest[0]).resolve().parent))
            runpy.run_path(args.rest[0], run_name="__main__")
    finally:  # no SIGPROF may outlive the handler: its default action kills the process
        signal.setitimer(signal.ITIMER_PROF, 0)
    return 0


def top_leaves(profile: dict[str, Any], n: int, label: str) -> str:
    """The ``n`` functions with the most CPU of their own (leaf frames), and their callers."""
    own: dict[str, float] = defaultdict(float)
    for stack, seconds in profile["stacks"].items():
        frames = stack.split(";")
        where = f"{frames[0]} " if stack.startswith("[") else ""
        own[where + ";".join(frames[-2:])] += seconds
    total = sum(own.values()) or 1.0
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:n]
    lines = [f"\n  {label}: heaviest functions (caller;function), share of sampled CPU"]
    lines += [f"  {s / total:6.1%}  {name}" for name, s in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
