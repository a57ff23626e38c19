"""The event-loop lag monitor: how late a periodic ``sleep(interval)`` wakes up.

A blocked loop delays every interaction; this is the cheapest honest measure of it
(``QTUNE_LOOP_LAG``). The worst lag seen is logged every ``log_every`` seconds and kept.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("qtune.bot")


class LoopLagMonitor:
    """Samples event-loop lag; ``max_lag`` is the worst seen since start, in seconds."""

    def __init__(self, interval: float, log_every: float = 10.0) -> None:
        self.interval = interval
        self.log_every = log_every
        self.max_lag = 0.0
        self.samples = 0

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        window_max, window_start = 0.0, loop.time()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            self.samples += 1
            self.max_lag = max(self.max_lag, lag)
            window_max = max(window_max, lag)
            if loop.time() - window_start >= self.log_every:
                log.info(
                    "event loop lag: max %.1f ms in the last %.0f s (%.1f ms since start)",
                    window_max * 1000,
                    loop.time() - window_start,
                    self.max_lag * 1000,
                )
                window_max, window_start = 0.0, loop.time()
