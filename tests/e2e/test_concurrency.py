"""Scenario 5: many users at once, and one user reacting to many recommendations at once.

The per-user cooldown is switched off (``QTUNE_COOLDOWN=0``): it would otherwise reject the
same user's 25 quick /nowplaying calls, which is not what this scenario is about.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import GENRES, THUMBS_UP, running_bot, suggested

pytestmark = pytest.mark.timeout(60)

USERS = [320_000_000_000_000_000 + i for i in range(40)]
HEAVY_USER = 320_000_000_000_001_000


async def test_forty_users_then_one_user_25_reactions(
    fake: FakeDiscord, bot_env: dict[str, str], debug_logs
) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0", "QTUNE_LOG_LEVEL": "INFO"}
    async with running_bot(fake, env) as qb:
        # 40 users at once.
        genres = [GENRES[i % len(GENRES)] for i in range(len(USERS))]
        results = await asyncio.gather(
            *(qb.nowplaying(u, g.lower()) for u, g in zip(USERS, genres, strict=True))
        )
        messages = [msg for _, msg in results]
        assert len({m.id for m in messages}) == len(USERS)
        actions = [suggested(m.content) for m in messages]

        # All of them react 👍 at once.
        delivered = await asyncio.gather(
            *(fake.user_reacts(m.id, u, THUMBS_UP) for m, u in zip(messages, USERS, strict=True))
        )
        assert all(delivered)

        async def all_rewarded() -> bool:
            counts = [await qb.rewards(u) for u in USERS]
            return all(c >= 1 for c in counts)

        await qb.eventually(all_rewarded, within=20, what="40 rewards")
        for user, state, action in zip(USERS, genres, actions, strict=True):
            view = await qb.service.table(user)
            assert view.rewards == 1, f"user {user}: {view.rewards} rewards"
            order = list(view.genres)
            expected = np.zeros_like(view.q)
            expected[order.index(state), order.index(action)] = 1.0
            np.testing.assert_allclose(view.q, expected, atol=1e-12)
            assert view.epsilon == pytest.approx(0.995)

        # One user, 25 pending recommendations, 👍 on all of them at once.
        heavy = await asyncio.gather(
            *(qb.nowplaying(HEAVY_USER, GENRES[i % len(GENRES)].lower()) for i in range(25))
        )
        pending = [rec for rec in await qb.service.pending() if rec.user_id == HEAVY_USER]
        assert len(pending) == 25
        delivered = await asyncio.gather(
            *(fake.user_reacts(msg.id, HEAVY_USER, THUMBS_UP) for _, msg in heavy)
        )
        assert all(delivered)

        async def heavy_rewarded() -> bool:
            return await qb.rewards(HEAVY_USER) >= 25

        await qb.eventually(heavy_rewarded, within=20, what="25 rewards")
        view = await qb.service.table(HEAVY_USER)
        assert view.rewards == 25
        assert view.epsilon == pytest.approx(0.995**25)
        assert not [rec for rec in await qb.service.pending() if rec.user_id == HEAVY_USER]
        # Rewards are +10 each and α·r > 0, so every visited (state, action) cell is > 0.
        assert np.count_nonzero(view.q) >= 1
        assert np.all(view.q >= 0.0)
    assert fake.token not in debug_logs.text
