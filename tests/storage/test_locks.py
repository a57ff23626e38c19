"""KeyedLocks: one lock per key, gone once nobody holds or waits for it."""

from __future__ import annotations

import asyncio

from storage.locks import KeyedLocks


async def test_a_key_is_exclusive_and_forgotten_when_idle() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def worker(name: str, key: int) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(worker("a", 1), worker("b", 1), worker("c", 2))
    same_key = [e for e in order if e[0] in "ab"]
    assert same_key in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert 1 not in locks
    assert 2 not in locks


async def test_a_waiter_keeps_the_key_known() -> None:
    locks = KeyedLocks()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold(7):
            entered.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    assert 7 in locks
    release.set()
    await task
    assert 7 not in locks
