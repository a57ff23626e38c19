"""What only SQLite has: the state encoding, migrations, unusable files, per-op rollback.

The behaviour every backend shares is in test_base.py (the storage contract)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from bot.engine.qlearning import LearnerState
from storage.base import Recommendation, StorageError, UserRecord
from storage.schema import SCHEMA_VERSION, decode_state, encode_state
from storage.sqlite import SQLiteStorage, default_db_path

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")


def learner(n: int = 5, seed: int = 0) -> LearnerState:
    rng = np.random.default_rng(seed)
    return LearnerState(
        rng.normal(size=(n, n)),
        0.42,
        rng.integers(0, 50, size=(n, n)),
        rng.normal(size=(n, n)) * 10,
    )


def test_default_path_reads_qtune_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QTUNE_DB", raising=False)
    assert default_db_path() == Path("data/qtune.sqlite3")
    monkeypatch.setenv("QTUNE_DB", "/somewhere/else.db")
    assert default_db_path() == Path("/somewhere/else.db")


@pytest.mark.parametrize("parts", ["none", "q", "all"])
def test_state_encoding_round_trips(parts: str) -> None:
    st = LearnerState.fresh(5, 0.3) if parts == "none" else learner()
    if parts == "q":
        st.visits[:] = 0
        st.reward_sum[:] = 0
    back = decode_state(encode_state(st), 5, st.epsilon)
    np.testing.assert_array_equal(back.q, st.q)
    np.testing.assert_array_equal(back.visits, st.visits)
    np.testing.assert_array_equal(back.reward_sum, st.reward_sum)
    assert len(encode_state(st)) <= {"none": 0, "q": 200, "all": 500}[parts]


def test_a_sparse_table_is_compressed() -> None:
    st = LearnerState.fresh(5, 0.9)
    st.q[1, 3], st.visits[1, 3], st.reward_sum[1, 3] = 1.0, 1, 10.0
    blob = encode_state(st)
    assert len(blob) < 100
    back = decode_state(blob, 5, 0.9)
    np.testing.assert_array_equal(back.q, st.q)
    np.testing.assert_array_equal(back.visits, st.visits)


# ------------------------------------------------------------------- migrations
def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


async def test_migrates_an_empty_file_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    st = await SQLiteStorage.open(path)
    await st.set_meta("k", "v")
    await st.close()
    assert user_version(path) == SCHEMA_VERSION
    st = await SQLiteStorage.open(path)
    try:
        assert await st.get_meta("k") == "v"
    finally:
        await st.close()
    assert user_version(path) == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_upgrades_a_version_1_database(tmp_path: Path) -> None:
    from storage.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO recommendations VALUES (5, 7, 11, 22, 'Rock', 'Jazz', 0.5, 1700000000123, "
        "10.0, 1700000001999)"
    )
    conn.execute("INSERT INTO recommendations VALUES (6, 7, NULL, NULL, 'Pop', 'Pop', 1.0, 0, "
                 "NULL, NULL)")  # fmt: skip
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    st = await SQLiteStorage.open(path)
    try:
        done = await st.apply_reward(5, 7, lambda _r, _u: pytest.fail("rewarded already"))
        [dm] = await st.pending(time.time() + 1)
    finally:
        await st.close()
    assert done.status == "already_rewarded"
    want = Recommendation(5, 7, 11, 22, "Rock", "Jazz", 0.5, 1700000000, 10.0, 1700000001)
    assert done.recommendation == want
    assert (dm.message_id, dm.guild_id, dm.channel_id, dm.state) == (6, None, None, "Pop")
    assert user_version(path) == SCHEMA_VERSION


async def test_refuses_a_newer_schema_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE x (a)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer") as err:
        await SQLiteStorage.open(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


async def test_not_a_database_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not a SQLite database") as err:
        await SQLiteStorage.open(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


async def test_corrupt_database_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    st = await SQLiteStorage.open(path)
    await st.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # valid header, garbage schema page
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt") as err:
        await SQLiteStorage.open(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == bytes(data)


async def test_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"x")
    with pytest.raises(StorageError, match="cannot create the folder") as err:
        await SQLiteStorage.open(blocker / "sub" / "qtune.db")
    assert "\n" not in str(err.value)
    assert blocker.read_bytes() == b"x"


async def test_directory_as_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="directory"):
        await SQLiteStorage.open(tmp_path)


async def test_closed_storage_refuses_work(tmp_path: Path) -> None:
    st = await SQLiteStorage.open(tmp_path / "c.db")
    await st.close()
    with pytest.raises(StorageError, match="closed"):
        await st.get_meta("k")


async def test_a_failing_write_is_rolled_back_alone(tmp_path: Path) -> None:
    """An error after an operation's first write (the place is interned, then the missing
    action fails) undoes that operation only; the batch's other operations commit."""
    st = await SQLiteStorage.open(tmp_path / "batch.db")
    try:
        await st.add_recommendation(Recommendation(1, 7, 1, 2, "Pop", "Rock", 1.0, time.time()))
        bad = Recommendation(2, 7, 3, 4, "Pop", None, 1.0, time.time())  # type: ignore[arg-type]
        fresh = UserRecord.fresh(7, st.genres, LearnerState.fresh(5, 1.0))
        results = await asyncio.gather(
            st.add_recommendation(bad),
            st.apply_reward(1, 7, lambda _r, _u: (10.0, fresh, None)),
            return_exceptions=True,
        )
        assert isinstance(results[0], TypeError)  # the op's own error, not a batch one
        assert results[1].status == "applied"
        assert await st.pending() == []  # 2 was never stored
        user = await st.get_user(7)
        assert user is not None
    finally:
        await st.close()
    conn = sqlite3.connect(tmp_path / "batch.db")
    try:
        places = [r[0] for r in conn.execute("SELECT value FROM lookup WHERE value LIKE 'p:%'")]
    finally:
        conn.close()
    assert places == ["p:1/2"]  # the failed op's interned place was rolled back too


def test_state_encoding_keeps_the_learners_memory() -> None:
    st = learner()
    st.memory = np.arange(3 * 25, dtype=float).reshape(3, 5, 5) / 7.0
    back = decode_state(encode_state(st), 5, st.epsilon)
    assert back.memory is not None
    np.testing.assert_array_equal(back.memory, st.memory)
    np.testing.assert_array_equal(back.visits, st.visits)
    fresh = LearnerState.fresh(5, 1.0)
    fresh.memory = np.zeros((3, 5, 5))
    fresh.memory[0, :, 2] = 0.4  # a newcomer's prior: pseudo-reactions only
    again = decode_state(encode_state(fresh), 5, 1.0)
    np.testing.assert_array_equal(again.memory, fresh.memory)
    assert not again.visits.any()


def test_blobs_without_memory_still_decode_as_before() -> None:
    st = learner()
    assert st.memory is None
    back = decode_state(encode_state(st), 5, st.epsilon)
    assert back.memory is None
    assert len(encode_state(st)) <= 500


async def test_a_guilds_tallies_are_read_through_an_index(tmp_path: Path) -> None:
    """A newcomer's community prior reads only their guild's rows, not the whole table."""
    from storage.sqlite import GUILD_TALLIES_SQL

    path = tmp_path / "q.db"
    await (await SQLiteStorage.open(path)).close()
    conn = sqlite3.connect(path)
    try:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {GUILD_TALLIES_SQL}", ("p:5/", "p:50")).fetchall()
    finally:
        conn.close()
    text = " | ".join(row[-1] for row in plan)
    assert "USING INDEX recommendations_place" in text, text
    assert "SCAN recommendations" not in text, text
