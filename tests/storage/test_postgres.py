"""PostgresStorage on a real throwaway server, beyond the contract every backend passes
(tests/storage/test_base.py runs on PostgreSQL too): the guarantees across *processes*,
migrations, refusals with one line, and outages that end in a retry, not a loss."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.engine.qlearning import LearnerState
from bot.service import QTuneService, Suggestion
from storage.base import Recommendation, StorageError, StorageUnavailable, UserRecord
from storage.pg_schema import PG_MIGRATIONS
from storage.pg_sql import GUILD_TALLIES_SQL
from storage.postgres import PG_SCHEMA_VERSION, PostgresStorage
from storage.schema import MIGRATIONS
from tests.pg_server import PgServer

USER = 4242
GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")


@pytest.fixture
async def storage(pg_url: str):
    st = await PostgresStorage.open(pg_url, genres=GENRES)
    yield st
    await st.close()


@pytest.fixture
async def service(storage: PostgresStorage) -> QTuneService:
    return QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(0))


async def record_many(service: QTuneService, n: int, first_id: int = 1) -> list[int]:
    ids = list(range(first_id, first_id + n))
    g = service.genres
    await asyncio.gather(
        *(
            service.record(mid, Suggestion(USER, g[i % 5], g[(i * 3) % 5], 1.0), 1, 2)
            for i, mid in enumerate(ids)
        )
    )
    return ids


def test_migration_lists_stay_in_step() -> None:
    """One schema version means the same features on both backends (copy-db needs it)."""
    assert len(PG_MIGRATIONS) == len(MIGRATIONS), "add each migration to both lists"


def _worker(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.pg_worker", *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_two_processes_racing_reward_each_recommendation_once(
    service: QTuneService, pg_url: str
) -> None:
    """Both processes react to the same 300 recommendations of one user at once."""
    ids = await record_many(service, 300)
    procs = [_worker("feedback", pg_url, USER, ids[0], len(ids)) for _ in range(2)]
    applied = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(applied) == 300  # each one exactly once, split between the processes
    user = await service.storage.get_user(USER)
    assert user is not None
    assert user.rewards == 300
    assert int(user.learner.visits.sum()) == 300  # no lost update


async def test_a_hold_in_another_process_delays_rewards_and_loses_none(
    service: QTuneService, pg_url: str
) -> None:
    ids = await record_many(service, 20)
    proc = _worker("simulate", pg_url, USER, 30_000)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == "held"
    results = await asyncio.gather(*(service.feedback(mid, USER, True) for mid in ids))
    assert all(r.applied for r in results)
    rest = await asyncio.to_thread(proc.communicate, timeout=120)
    assert "done" in rest[0]
    user = await service.storage.get_user(USER)
    assert user is not None
    assert int(user.learner.visits.sum()) == 30_020  # the rewards landed on top


async def test_an_expired_lease_of_a_dead_holder_is_taken_over(
    storage: PostgresStorage, pg_url: str
) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "INSERT INTO user_holds VALUES ($1, 'dead:1', now() - interval '1 second')", USER
        )
    finally:
        await conn.close()

    async def work(rec):
        return LearnerState.fresh(5, 0.2), "ok"

    assert await asyncio.wait_for(storage.hold_and_update(USER, work), 10) == "ok"


async def test_an_empty_database_gets_the_schema_and_reopens(pg_url: str) -> None:
    opened = await asyncio.gather(*(PostgresStorage.open(pg_url) for _ in range(3)))
    for st in opened:
        await st.close()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT version FROM qtune_schema") == PG_SCHEMA_VERSION
    finally:
        await conn.close()


async def test_a_guilds_tallies_are_read_through_an_index(pg_url: str) -> None:
    """A newcomer's community prior reads only their guild's rows, not the whole table."""
    await (await PostgresStorage.open(pg_url)).close()
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("SET enable_seqscan = off")  # a tiny table would be scanned anyway
        plan = await conn.fetch(f"EXPLAIN {GUILD_TALLIES_SQL}", 5)
    finally:
        await conn.close()
    text = " | ".join(row[0] for row in plan)
    assert "recommendations_guild" in text, text


async def test_a_newer_schema_is_refused_with_one_line(pg_url: str) -> None:
    await (await PostgresStorage.open(pg_url)).close()
    conn = await asyncpg.connect(pg_url)
    await conn.execute("UPDATE qtune_schema SET version = 99")
    await conn.close()
    with pytest.raises(StorageError, match="schema version 99, newer") as err:
        await PostgresStorage.open(pg_url)
    assert "\n" not in str(err.value)


async def test_a_foreign_database_is_refused(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    await conn.execute("CREATE TABLE users (id int)")
    await conn.close()
    with pytest.raises(StorageError, match="not a qtune database"):
        await PostgresStorage.open(pg_url)


async def test_unreachable_server_and_missing_database_are_one_line(
    pg_server: PgServer,
) -> None:
    with pytest.raises(StorageError, match="does not exist") as err:
        await PostgresStorage.open(pg_server.url("no_such_db"))
    assert "\n" not in str(err.value)
    dead = f"postgresql://qtune:secret@127.0.0.1:{pg_server.port + 1}/x"
    with pytest.raises(StorageError, match="cannot connect") as err:
        await PostgresStorage.open(dead, connect_timeout=2)
    assert "secret" not in str(err.value)


async def test_a_restart_is_waited_out_or_reported_then_reconnected(
    pg_server: PgServer, pg_url: str
) -> None:
    st = await PostgresStorage.open(pg_url, retry_for=0.5)
    svc = QTuneService(st, learner=make_learner("seed"), rng=np.random.default_rng(0))
    try:
        ids = await record_many(svc, 2)
        await asyncio.to_thread(pg_server.pg_ctl_stop)
        try:
            with pytest.raises(StorageUnavailable, match="cannot reach PostgreSQL"):
                await svc.feedback(ids[0], USER, True)
        finally:
            await asyncio.to_thread(pg_server.pg_ctl_start)
        rec = await st.get_recommendation(ids[0])
        assert rec is not None
        assert not rec.rewarded  # the failed call changed nothing...
        assert (await svc.feedback(ids[0], USER, True)).applied  # ...and the pool reconnected
        st.retry_for = 30.0  # a restart shorter than the budget is simply waited out
        restart = asyncio.create_task(asyncio.to_thread(pg_server.pg_ctl_stop))
        await asyncio.sleep(0.2)
        late = asyncio.create_task(svc.feedback(ids[1], USER, True))
        await restart
        await asyncio.sleep(0.5)
        await asyncio.to_thread(pg_server.pg_ctl_start)
        assert (await late).applied
    finally:
        await st.close()


async def test_the_learners_memory_round_trips(storage: PostgresStorage) -> None:
    st = LearnerState.fresh(5, 0.5)
    st.memory = np.arange(75, dtype=float).reshape(3, 5, 5) / 3.0
    mid = 99_001
    await storage.add_recommendation(Recommendation(mid, USER, 1, 2, "Pop", "Rock", 1.0, 1000.0))
    record = UserRecord(USER, GENRES, st, "Pop", 1, 1000.0, 1000.0)
    out = await storage.apply_reward(mid, USER, lambda _r, _u: (1.0, record, None))
    assert out.status == "applied"
    got = await storage.get_user(USER)
    assert got is not None
    assert got.learner.memory is not None
    np.testing.assert_array_equal(got.learner.memory, st.memory)


async def test_propensities_are_stored_on_postgres(storage: PostgresStorage) -> None:
    await storage.add_recommendation(
        Recommendation(88_001, USER, 1, 2, "Pop", "Rock", 1.0, 1000.0, propensity=0.125)
    )
    [got] = await storage.recommendations_of(USER)
    assert got.propensity == 0.125
    made = UserRecord.fresh(USER, GENRES, LearnerState.fresh(5, 1.0))
    out = await storage.apply_reward(88_001, USER, lambda _r, u: (10.0, u or made, None))
    assert out.status == "applied"
    [logged] = await storage.logged_rewards()
    assert (logged.message_id, logged.propensity, logged.reward) == (88_001, 0.125, 10.0)


async def test_a_write_between_a_batchs_read_and_write_is_kept_and_the_reward_redone(
    service: QTuneService, pg_url: str
) -> None:
    """The optimistic reward batch: another writer changes the user's row after the
    batch read it. The batch's write must not overwrite that change (a lost update): it
    finds a newer row version, reads again and applies the reward on top, once."""
    await service.recommend(USER, "Pop")  # the user's row exists: the optimistic path
    [mid] = await record_many(service, 1)
    storage = service.storage
    assert isinstance(storage, PostgresStorage)
    before = await storage.get_user(USER)
    assert before is not None
    other = await asyncpg.connect(pg_url)
    try:
        await other.execute("BEGIN")
        # Another process's write, not yet committed: the batch reads the old row, and
        # its write waits for this row lock.
        await other.execute("UPDATE users SET rewards = rewards + 100 WHERE user_id = $1", USER)
        reward = asyncio.create_task(service.feedback(mid, USER, True))
        for _ in range(1000):
            await other.execute("SELECT pg_stat_clear_snapshot()")  # fresh in a transaction
            waiting = await other.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'WITH v AS%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1, "the batch's write waits for the other writer's row lock"
        await other.execute("COMMIT")
        result = await asyncio.wait_for(reward, 20)
    finally:
        await other.close()
    assert result.applied
    assert storage.stale_writes == 1
    after = await storage.get_user(USER)
    assert after is not None
    assert after.rewards == before.rewards + 100 + 1  # the other write kept, the reward on top
    assert int(after.learner.visits.sum()) == int(before.learner.visits.sum()) + 1
    [rec] = await storage.recommendations_of(USER)
    assert rec.reward == 10.0
