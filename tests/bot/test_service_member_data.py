"""QTuneService.history / export / server_stats: the rules behind /stats and /export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.service import MIN_MEMBERS_PER_FIGURE, QTuneService
from storage.sqlite import SQLiteStorage

GUILD = 77


@pytest.fixture
async def service(tmp_path: Path):
    st = await SQLiteStorage.open(tmp_path / "svc.db")
    yield QTuneService(st, learner=make_learner("seed"), rng=np.random.default_rng(5))
    await st.close()


async def rate(service: QTuneService, mid: int, user: int, liked: bool, guild=GUILD) -> str:
    s = await service.recommend(user, "Rock")
    await service.record(mid, s, guild, 1)
    assert (await service.feedback(mid, user, liked)).applied
    return s.action


async def test_history_lists_rewarded_reactions_oldest_first(service) -> None:
    a1 = await rate(service, 1, 10, True)
    a2 = await rate(service, 2, 10, False)
    s = await service.recommend(10, "Pop")
    await service.record(3, s, GUILD, 1)  # not rated: not in the history
    hist = await service.history(10)
    assert [(r.action, r.liked) for r in hist.reactions] == [(a1, True), (a2, False)]
    assert hist.table.rewards == 2
    assert hist.beliefs["Rock"] is not None  # the Rock row learned something
    assert hist.beliefs["Jazz"] is None  # never on Jazz: no preference


async def test_export_holds_table_counts_and_recommendations(service) -> None:
    action = await rate(service, 1, 10, True)
    await rate(service, 2, 11, True)
    data = await service.export(10)
    json.dumps(data)  # JSON-ready as it is
    g = data["genres"]
    assert data["user_id"] == "10"
    assert data["table"]["reactions_per_cell"][g.index("Rock")][g.index(action)] == 1
    assert data["table"]["reward_sum_per_cell"][g.index("Rock")][g.index(action)] == 10.0
    assert [r["message_id"] for r in data["recommendations"]] == ["1"]
    assert await service.reset(10)
    assert (await service.export(10))["table"] is None
    assert (await service.export(10))["recommendations"] == []


async def test_server_stats_hide_figures_of_too_few_members(service) -> None:
    mid = 0
    actions: dict[int, list[tuple[str, bool]]] = {}
    for user in range(1, MIN_MEMBERS_PER_FIGURE + 1):
        for liked in (True, False, True):
            mid += 1
            actions.setdefault(user, []).append((await rate(service, mid, user, liked), liked))
    await rate(service, 999, 50, True, guild=GUILD + 1)  # another server
    full = await service.server_stats(GUILD, every_figure=True)
    assert full.members == MIN_MEMBERS_PER_FIGURE
    assert full.hidden == 0
    for stat in full.genres:
        pairs = [(u, ok) for u, acts in actions.items() for a, ok in acts if a == stat.genre]
        assert stat.ratings == len(pairs)
        assert stat.likes == sum(ok for _, ok in pairs)
        assert stat.members == len({u for u, _ in pairs})
    public = await service.server_stats(GUILD)
    assert all(g.members >= MIN_MEMBERS_PER_FIGURE for g in public.genres)
    assert public.hidden == sum(g.members < MIN_MEMBERS_PER_FIGURE for g in full.genres)
    shares = [g.share for g in public.genres]
    assert shares == sorted(shares, reverse=True)


async def test_one_members_server_shows_nothing_without_manage_server(service) -> None:
    await rate(service, 1, 10, True)
    stats = await service.server_stats(GUILD)
    assert stats.genres == []
    assert stats.hidden == 1
