"""The community prior in the service, on a real SQLite file: a member's first table in a
guild starts from the guild's aggregate taste; the privacy rules (only aggregates, only
other members, /reset removes the caller's part, DMs teach nothing, QTUNE_COMMUNITY=off)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bot.config import ConfigError, Settings
from bot.engine.community import MIXTURE_STRENGTH, REWEIGH_REACTIONS
from bot.engine.learners import make_learner
from bot.engine.learners.dyna.forgetting import VISITS
from bot.engine.probing import probe_pick
from bot.service import QTuneService, community_evidence
from storage.base import RatingTally
from storage.sqlite import SQLiteStorage

GUILD, OTHER_GUILD = 555, 777
NEWCOMER = 9000
ids = itertools.count(1)


@pytest.fixture
async def storage(tmp_path: Path):
    st = await SQLiteStorage.open(tmp_path / "community.db")
    yield st
    await st.close()


def service_on(storage: SQLiteStorage, *, community: bool = True, learner: str = "dyna"):
    return QTuneService(
        storage,
        learner=make_learner(learner),
        community=community,
        rng=np.random.default_rng(3),
    )


async def react(service: QTuneService, user: int, guild: int | None, liked: bool, genre="Pop"):
    """One /nowplaying in ``guild`` and the member's reaction to its suggestion."""
    suggestion = await service.recommend(user, genre, guild)
    mid = next(ids)
    await service.record(mid, suggestion, guild, 1)
    result = await service.feedback(mid, user, liked)
    assert result.applied
    return suggestion.action


async def rock_server(service: QTuneService, members: range, guild: int = GUILD) -> None:
    """Members who like Rock and nothing else, each reacting a dozen times."""
    for user in members:
        for _ in range(12):
            suggestion = await service.recommend(user, "Pop", guild)
            mid = next(ids)
            await service.record(mid, suggestion, guild, 1)
            assert (await service.feedback(mid, user, suggestion.action == "Rock")).applied


async def test_a_newcomer_starts_from_the_guilds_taste(storage: SQLiteStorage) -> None:
    service = service_on(storage)
    await rock_server(service, range(1, 9))
    assert await storage.guild_tallies(GUILD)  # rated suggestions are the guild's evidence
    await service.recommend(NEWCOMER, "Pop", GUILD)
    table = await service.table(NEWCOMER)
    rock, pop = service.genres.index("Rock"), service.genres.index("Pop")
    assert (table.q[:, rock] > table.q[:, pop]).all()
    assert not table.learned  # no reaction of their own yet
    fresh = await service.table(NEWCOMER + 1)  # a stranger's table, not stored
    assert np.ptp(fresh.q[:, rock] - fresh.q[:, pop]) == pytest.approx(0.0)


async def test_only_the_aggregate_reaches_a_newcomer(storage: SQLiteStorage) -> None:
    """Members' state-dependent tables never show: the newcomer's evidence is the same in
    every row, nothing is copied from a member's table, and they have no history."""
    service = service_on(storage)
    await rock_server(service, range(1, 9))
    await service.recommend(NEWCOMER, "Jazz", GUILD)
    user = await storage.get_user(NEWCOMER)
    assert user is not None
    assert not user.learner.visits.any()
    assert not user.learner.reward_sum.any()
    memory = user.learner.memory
    assert memory is not None
    assert (memory[VISITS] == memory[VISITS][0]).all()  # one pseudo-row, repeated
    assert memory[VISITS].sum() <= MIXTURE_STRENGTH * len(service.genres) + 1e-9  # capped


async def test_only_the_first_table_gets_a_prior(storage: SQLiteStorage) -> None:
    service = service_on(storage)
    await react(service, NEWCOMER, OTHER_GUILD, liked=True)
    before = await storage.get_user(NEWCOMER)
    await rock_server(service, range(1, 9))
    await service.recommend(NEWCOMER, "Pop", GUILD)  # joins the rock server later
    after = await storage.get_user(NEWCOMER)
    assert before is not None
    assert after is not None
    np.testing.assert_array_equal(after.learner.q, before.learner.q)


async def test_dms_teach_no_guild_and_get_no_prior(storage: SQLiteStorage) -> None:
    service = service_on(storage)
    for user in range(1, 6):
        await react(service, user, None, liked=True)
    assert await storage.guild_tallies(GUILD) == []
    await service.recommend(NEWCOMER, "Pop", None)
    user = await storage.get_user(NEWCOMER)
    assert user is not None
    assert user.learner.memory is None  # a plain fresh table


async def test_reset_removes_the_callers_contribution_only(storage: SQLiteStorage) -> None:
    service = service_on(storage)
    await rock_server(service, range(1, 5))
    await react(service, 1, OTHER_GUILD, liked=True)
    assert await service.reset(1)
    for guild in (GUILD, OTHER_GUILD):
        assert all(r.user_id != 1 for r in await storage.guild_tallies(guild))
    assert {r.user_id for r in await storage.guild_tallies(GUILD)} == {2, 3, 4}
    # their first table after /reset is a newcomer's again
    await service.recommend(1, "Pop", GUILD)
    user = await storage.get_user(1)
    assert user is not None
    assert user.learner.memory is not None


async def test_off_switch(storage: SQLiteStorage) -> None:
    service = service_on(storage, community=False)
    await rock_server(service, range(1, 9))
    await service.recommend(NEWCOMER, "Pop", GUILD)
    user = await storage.get_user(NEWCOMER)
    assert user is not None
    assert user.learner.memory is None
    assert Settings.from_env({"QTUNE_COMMUNITY": "off"}).community is False
    assert Settings.from_env({}).community is True
    with pytest.raises(ConfigError, match="QTUNE_COMMUNITY must be on or off"):
        Settings.from_env({"QTUNE_COMMUNITY": "maybe"})


async def test_learners_without_a_prior_ignore_the_community(storage: SQLiteStorage) -> None:
    service = service_on(storage, learner="seed")
    assert service.community is False
    await rock_server(service, range(1, 9))
    await service.recommend(NEWCOMER, "Pop", GUILD)
    user = await storage.get_user(NEWCOMER)
    assert user is not None
    assert user.learner.memory is None


def test_evidence_leaves_out_the_newcomer_and_removed_genres() -> None:
    rows = [
        RatingTally(1, "Rock", 3, 30.0),
        RatingTally(1, "Polka", 5, 50.0),  # a genre no longer configured
        RatingTally(2, "rock", 2, -10.0),  # matched case-insensitively
        RatingTally(9, "Rock", 4, 40.0),
    ]
    genres = ("Pop", "Rock")
    members = community_evidence(rows, genres, exclude=9)
    assert [m.reactions.tolist() for m in members] == [[0, 3], [0, 2]]
    assert [m.reward_sum.tolist() for m in members] == [[0, 30.0], [0, -10.0]]


async def fans(service: QTuneService, members: range, genre: str, times: int = 12) -> None:
    """Members who like ``genre`` and nothing else."""
    for user in members:
        for _ in range(times):
            suggestion = await service.recommend(user, "Pop", GUILD)
            mid = next(ids)
            await service.record(mid, suggestion, GUILD, 1)
            assert (await service.feedback(mid, user, suggestion.action == genre)).applied


def pseudo(rec, genre: int) -> float:
    """The newcomer's community pseudo-reactions for ``genre``: working counts − history."""
    memory = rec.learner.memory
    return float(memory[VISITS][:, genre].sum() - rec.learner.visits[:, genre].sum())


async def test_a_newcomers_prior_follows_their_own_reactions(storage: SQLiteStorage) -> None:
    """Two camps: the newcomer starts lifted towards the larger; as they turn down its
    genre and like the other camp's, the prior moves to the other camp's genre."""
    service = service_on(storage)
    await fans(service, range(1, 9), "Jazz")
    await fans(service, range(20, 25), "Rock")
    jazz, rock = service.genres.index("Jazz"), service.genres.index("Rock")
    await service.recommend(NEWCOMER, "Pop", GUILD)
    start = await storage.get_user(NEWCOMER)
    assert start is not None
    assert pseudo(start, jazz) > pseudo(start, rock) >= 0
    for _ in range(6):
        await react_to(service, NEWCOMER, liked_genre="Rock")
    now = await storage.get_user(NEWCOMER)
    assert now is not None
    assert pseudo(now, rock) > pseudo(start, rock)
    assert pseudo(now, jazz) < 0.5 * pseudo(start, jazz)
    assert NEWCOMER in service._newcomers
    assert await service.reset(NEWCOMER)
    assert NEWCOMER not in service._newcomers  # /reset forgets the clusters too


async def test_the_prior_is_reweighed_only_for_the_first_reactions(
    storage: SQLiteStorage,
) -> None:
    service = service_on(storage)
    await fans(service, range(1, 9), "Jazz")
    await service.recommend(NEWCOMER, "Pop", GUILD)
    for _ in range(REWEIGH_REACTIONS):
        assert NEWCOMER in service._newcomers
        await react_to(service, NEWCOMER, liked_genre="Rock")
    assert NEWCOMER not in service._newcomers  # in memory only, and only this long


async def react_to(service: QTuneService, user: int, liked_genre: str) -> None:
    suggestion = await service.recommend(user, "Pop", GUILD)
    mid = next(ids)
    await service.record(mid, suggestion, GUILD, 1)
    assert (await service.feedback(mid, user, suggestion.action == liked_genre)).applied


async def test_a_newcomer_is_probed_and_the_probe_is_logged_with_propensity_1(
    storage: SQLiteStorage,
) -> None:
    """While a newcomer's clusters are unsure the service suggests the probe of
    bot.engine.probing (the offline servers' rule) and logs it as certain; with the
    community off, or once the first reactions are past, the learner's own pick and its
    estimated propensity are logged."""
    service = service_on(storage)
    await fans(service, range(1, 9), "Jazz")
    await fans(service, range(20, 25), "Rock")
    low, high = service.dislike_reward, service.like_reward
    probed = 0
    for _ in range(REWEIGH_REACTIONS):
        user = await storage.get_user(NEWCOMER)
        mixture = service._newcomers.get(NEWCOMER)
        suggestion = await service.recommend(NEWCOMER, "Pop", GUILD)
        if user is None:  # the first /nowplaying made the table and kept the clusters
            user = await storage.get_user(NEWCOMER)
            mixture = service._newcomers[NEWCOMER]
        assert user is not None
        assert mixture is not None
        counts = user.learner.visits.sum(axis=0), user.learner.reward_sum.sum(axis=0)
        probe = probe_pick(mixture, *counts, low, high)
        if probe is not None:
            probed += 1
            assert suggestion.action == service.genres[probe]
            assert suggestion.propensity == 1.0
        mid = next(ids)
        await service.record(mid, suggestion, GUILD, 1)
        assert (await service.feedback(mid, NEWCOMER, suggestion.action == "Rock")).applied
    assert probed >= 3
    logged = {r.message_id: r for r in await storage.recommendations_of(NEWCOMER)}
    assert sum(r.propensity == 1.0 for r in logged.values()) >= probed
    after = await service.recommend(NEWCOMER, "Pop", GUILD)  # past the first reactions
    assert NEWCOMER not in service._newcomers
    assert after.propensity is not None
    assert after.propensity < 1.0

    off = service_on(storage, community=False)
    first = await off.recommend(NEWCOMER + 1, "Pop", GUILD)
    assert NEWCOMER + 1 not in off._newcomers
    assert first.propensity is not None
    assert first.propensity < 1.0
