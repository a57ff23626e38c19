"""Keep the garbage collector's full collections off the interaction path.

A full (generation 2) collection walks every tracked object in the process, and start-up
leaves a few hundred thousand of them (modules, numpy, discord.py's classes, then its guild
cache), none of which ever becomes garbage. Measured on 2026-12-01 with 200 users against
the fake Discord: one such collection stopped the event loop for 56 ms, the largest stall of
the run. Frozen objects are out of the collector's view, so a later full collection walks
only what the bot made since.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("qtune.bot")


def collect_and_freeze() -> None:
    """Collect start-up's garbage, then freeze the rest. 50-100 ms: call it before the
    gateway connects, when no interaction can be waiting. Only in a process the bot owns:
    frozen objects are never freed, even once they are garbage."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info(
        "froze %d start-up objects out of the garbage collector's view in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )


def freeze_at_first_ready() -> Callable[[], Coroutine[Any, Any, None]]:
    """An ``on_ready`` listener: at the first READY, freeze what arrived since start-up
    (the guild cache). No collection, so it takes about no time; the few cycles of garbage
    it may hold are kept, not freed. Later READYs (a reconnect) freeze nothing more."""
    done = False

    async def on_ready() -> None:
        nonlocal done
        if not done:
            done = True
            gc.freeze()

    return on_ready
