"""The storage queries behind /export and /stats, on every backend of
tests/storage/backends.py (PostgreSQL on the session's throwaway server)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from bot.engine.qlearning import LearnerState
from storage.base import Recommendation, RewardOutcome, Storage, UserRecord
from tests.storage.backends import BACKENDS, make_backend

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    made = make_backend(request.param, request)
    yield await made.open(GENRES)
    await made.close()


ANN, BEN = 11, 12
GUILD, OTHER_GUILD = 500, 5001  # 500 is a prefix of 5001: they must not be mixed


def rec(mid: int, user: int, guild: int | None, action: str, at: float) -> Recommendation:
    return Recommendation(mid, user, guild, 7, "Rock", action, 0.5, at)


async def reward(storage, mid: int, user: int, value: float) -> RewardOutcome:
    def step(r: Recommendation, u: UserRecord | None):
        u = u or UserRecord.fresh(user, GENRES, LearnerState.fresh(len(GENRES), 1.0))
        return value, u, None

    return await storage.apply_reward(mid, user, step)


async def test_recommendations_of_is_one_users_rows_oldest_first(storage) -> None:
    now = time.time()
    await storage.add_recommendation(rec(3, ANN, GUILD, "Jazz", now))
    await storage.add_recommendation(rec(1, ANN, None, "Pop", now - 100))
    await storage.add_recommendation(rec(2, BEN, GUILD, "Pop", now - 50))
    assert (await reward(storage, 1, ANN, 10.0)).status == "applied"
    rows = await storage.recommendations_of(ANN)
    assert [r.message_id for r in rows] == [1, 3]
    assert rows[0].reward == 10.0
    assert rows[0].guild_id is None
    assert rows[1].reward is None
    assert rows[1].guild_id == GUILD
    assert await storage.recommendations_of(999) == []
    await storage.delete_user(ANN)
    assert await storage.recommendations_of(ANN) == []
    assert [r.message_id for r in await storage.recommendations_of(BEN)] == [2]


async def test_guild_tallies_sum_rewarded_rows_per_member_and_genre(storage) -> None:
    now = time.time()
    rows = [
        (1, ANN, GUILD, "Pop", 10.0),
        (2, ANN, GUILD, "Pop", -5.0),
        (3, ANN, GUILD, "Jazz", 10.0),
        (4, BEN, GUILD, "Pop", 10.0),
        (5, BEN, GUILD, "Rock", None),  # not rewarded: not counted
        (6, BEN, OTHER_GUILD, "Pop", 10.0),  # another server
        (7, BEN, None, "Pop", 10.0),  # the console, no server
    ]
    for mid, user, guild, action, value in rows:
        await storage.add_recommendation(rec(mid, user, guild, action, now + mid))
        if value is not None:
            assert (await reward(storage, mid, user, value)).status == "applied"
    got = {
        (t.user_id, t.action): (t.ratings, t.reward_sum) for t in await storage.guild_tallies(GUILD)
    }
    assert got == {(ANN, "Pop"): (2, 5.0), (ANN, "Jazz"): (1, 10.0), (BEN, "Pop"): (1, 10.0)}
    other = await storage.guild_tallies(OTHER_GUILD)
    assert [(t.user_id, t.action, t.ratings) for t in other] == [(BEN, "Pop", 1)]
    assert await storage.guild_tallies(42) == []
    assert np.isclose(sum(t.reward_sum for t in other), 10.0)
