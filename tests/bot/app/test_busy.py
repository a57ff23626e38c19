"""The in-flight tracker that shutdown waits on."""

from __future__ import annotations

import asyncio

from bot.app.busy import InFlight


async def test_idle_only_when_every_holder_left() -> None:
    tracker = InFlight()
    assert await tracker.wait_idle(0.01)
    release = asyncio.Event()

    async def hold() -> None:
        async with tracker.hold():
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    await asyncio.sleep(0)
    assert tracker.count == 3
    assert not await tracker.wait_idle(0.01)  # still busy: False after the grace
    release.set()
    assert await tracker.wait_idle(1.0)
    assert tracker.count == 0
    await asyncio.gather(*tasks)


async def test_a_failing_holder_still_leaves() -> None:
    tracker = InFlight()
    try:
        async with tracker.hold():
            raise ValueError("boom")
    except ValueError:
        pass
    assert tracker.count == 0
    assert await tracker.wait_idle(0.01)


async def test_cancel_ends_the_tasks_still_holding() -> None:
    """Shutdown, once its grace is over: every task inside hold() is cancelled, the
    tracker is idle, a task that already left is untouched."""
    flight = InFlight()
    never = asyncio.Event()

    async def stuck() -> None:
        async with flight.hold(), flight.hold():  # nested holds count once per task
            await never.wait()

    async def quick() -> str:
        async with flight.hold():
            return "done"

    tasks = [asyncio.create_task(stuck()) for _ in range(3)]
    done = asyncio.create_task(quick())
    await asyncio.sleep(0)
    assert await done == "done"
    assert flight.count == 6
    assert flight.cancel() == 3
    assert await flight.wait_idle(5)
    assert all(t.cancelled() for t in tasks)
    assert flight.cancel() == 0
