"""The loop-lag monitor sees a blocked event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.app.lag import LoopLagMonitor

pytestmark = pytest.mark.timeout(30)


async def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopLagMonitor(0.01, log_every=3600)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.03)
    time.sleep(0.2)  # noqa: ASYNC251 - block the loop on purpose
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert monitor.samples >= 2
    assert monitor.max_lag >= 0.1
