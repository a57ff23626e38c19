"""The start-up heap freeze (bot/app/heap.py): what is frozen, and when."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bot.app import heap


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen: pytest's own heap stays collectable."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle_garbage() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_start_up_garbage_is_collected_before_the_rest_is_frozen() -> None:
    gc.disable()
    try:
        garbage = cycle_garbage()
        assert garbage() is not None  # a cycle: only the collector frees it
        heap.collect_and_freeze()
        assert garbage() is None
        assert gc.get_freeze_count() > 1000  # at least the modules pytest imported
    finally:
        gc.enable()


async def test_the_ready_listener_freezes_at_the_first_ready_only() -> None:
    on_ready = heap.freeze_at_first_ready()
    await on_ready()
    first = gc.get_freeze_count()
    assert first > 0
    later = [Node() for _ in range(100)]  # tracked objects made after the first READY
    await on_ready()
    assert gc.get_freeze_count() == first
    gc.unfreeze()
    assert len(later) == 100
