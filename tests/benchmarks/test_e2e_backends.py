"""The load benchmark's lost/doubled check (``benchmarks/e2e_backends.py``) must see a
lost reward, a doubled one and a wrong value, or its "0 lost / 0 doubled" means nothing.

Real SQLite storage and the real service write the rewards; the check reads them back.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.engine.learners import make_learner
from bot.service import QTuneService
from storage.sqlite import SQLiteStorage
from tests.harness import THUMBS_DOWN, THUMBS_UP

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from e2e_backends import check_rewards

USER = 5150


async def given(path: Path, n: int) -> list[tuple[int, int, str]]:
    """``n`` recommendations to USER, each rewarded 👍 (even) or 👎 (odd) through the service."""
    storage = await SQLiteStorage.open(path)
    service = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(0))
    reacted = []
    for mid in range(1, n + 1):
        suggestion = await service.recommend(USER, "Pop")
        await service.record(mid, suggestion, 1, 2)
        result = await service.feedback(mid, USER, mid % 2 == 0)
        assert result.applied
        reacted.append((mid, USER, THUMBS_UP if mid % 2 == 0 else THUMBS_DOWN))
    await storage.close()
    return reacted


async def test_every_reaction_stored_once_passes(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    check = await check_rewards(str(path), await given(path, 4))
    assert check.ok, check.notes
    assert (check.reactions, check.lost, check.doubled, check.wrong) == (4, 0, 0, 0)


async def test_a_reaction_never_stored_counts_as_lost(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    reacted = await given(path, 3)
    storage = await SQLiteStorage.open(path)
    service = QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(1))
    await service.record(99, await service.recommend(USER, "Rock"), 1, 2)  # never rewarded
    await storage.close()
    check = await check_rewards(str(path), [*reacted, (99, USER, THUMBS_UP)])
    assert not check.ok
    assert check.lost == 1
    assert check.users_off == 1  # and the user's counters show one reward too few


async def test_a_reward_applied_twice_counts_as_doubled(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    reacted = await given(path, 3)
    storage = await SQLiteStorage.open(path)
    user = await storage.get_user(USER)
    assert user is not None
    user.learner.visits[0, 0] += 1  # what a second application of one reward would leave
    await storage.import_rows([replace(user, rewards=user.rewards + 1)], [])
    await storage.close()
    check = await check_rewards(str(path), reacted)
    assert not check.ok
    assert check.doubled == 1
    assert check.lost == 0


async def test_a_reward_of_the_wrong_value_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    reacted = await given(path, 2)
    flipped = [(mid, uid, THUMBS_DOWN if e == THUMBS_UP else THUMBS_UP) for mid, uid, e in reacted]
    check = await check_rewards(str(path), flipped)
    assert not check.ok
    assert check.wrong == 2
