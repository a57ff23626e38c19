"""FeedbackRetrier: a reaction that meets a busy or absent database is retried, then
deferred and applied by a later pass, never dropped and never applied twice.

The feedback function here is a stand-in that fails on demand; it has no reward rule of
its own (the real ones run in tests/e2e/test_db_faults.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from bot.errors import StorageError, StorageUnavailable
from bot.resilience import FeedbackRetrier


@dataclass
class Result:
    applied: bool


class FlakyFeedback:
    """Raises StorageUnavailable while ``down``; records every successful call."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[tuple[int, int, bool]] = []
        self.attempts = 0

    async def __call__(self, message_id: int, user_id: int, liked: bool) -> Result:
        self.attempts += 1
        await asyncio.sleep(0)
        if self.down:
            raise StorageUnavailable("database is busy: database is locked")
        self.calls.append((message_id, user_id, liked))
        return Result(True)


async def test_a_short_outage_is_ridden_out_by_retrying() -> None:
    flaky = FlakyFeedback()
    retrier = FeedbackRetrier(flaky, retry_for=5, first_delay=0.01, max_delay=0.05)
    flaky.down = True
    task = asyncio.create_task(retrier.apply(1, 7, True))
    await asyncio.sleep(0.2)
    assert not task.done()
    flaky.down = False
    assert (await task) == Result(True)
    assert flaky.calls == [(1, 7, True)]
    assert flaky.attempts > 2
    assert retrier.recovered() is not None  # the outage was noticed, and is over
    assert retrier.recovered() is None


async def test_a_long_outage_defers_and_a_later_pass_applies_once() -> None:
    flaky = FlakyFeedback()
    retrier = FeedbackRetrier(flaky, retry_for=0.05, first_delay=0.01, max_delay=0.02)
    flaky.down = True
    assert await retrier.apply(1, 7, True) is None
    assert await retrier.apply(1, 7, False) is None  # the first reaction wins
    assert await retrier.apply(2, 8, False) is None
    assert retrier.deferred == {(1, 7): True, (2, 8): False}
    assert await retrier.drain() == 0  # still down: nothing lost
    assert len(retrier.deferred) == 2
    assert retrier.recovered() is None
    flaky.down = False
    assert await retrier.drain() == 2
    assert sorted(flaky.calls) == [(1, 7, True), (2, 8, False)]
    assert retrier.deferred == {}
    assert await retrier.drain() == 0
    assert retrier.recovered() is not None


async def test_a_retry_asleep_at_shutdown_defers_instead_of_trying_again() -> None:
    """The bot closes its storage after shutting down: a retry that woke then met the
    closed database and logged a traceback. Now it defers (the start-up catch-up
    applies it) and never calls the storage again."""
    flaky = FlakyFeedback()
    stopping = False
    retrier = FeedbackRetrier(
        flaky, retry_for=60, first_delay=0.05, max_delay=0.05, stopping=lambda: stopping
    )
    flaky.down = True
    task = asyncio.create_task(retrier.apply(1, 7, True))
    await asyncio.sleep(0.01)  # the first attempt fails; the retry sleeps 0.05 s
    assert flaky.attempts == 1
    stopping = True  # shutting down while the retry sleeps in its backoff
    assert await asyncio.wait_for(task, 10) is None
    assert flaky.attempts == 1
    assert retrier.deferred == {(1, 7): True}


async def test_other_storage_errors_are_not_retried() -> None:
    async def broken(message_id: int, user_id: int, liked: bool) -> Result:
        raise StorageError("database error: disk I/O error")

    retrier = FeedbackRetrier(broken, retry_for=5)
    with pytest.raises(StorageError, match="disk I/O"):
        await retrier.apply(1, 2, True)
    assert retrier.deferred == {}
