"""SQLiteStorage on real files: round trips, genre changes, migrations, unusable files."""

from __future__ import annotations

import sqlite3
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


async def put(storage: SQLiteStorage, record: UserRecord) -> None:
    await storage.update_user(record.user_id, lambda _old: (record, None))


@pytest.fixture
async def storage(tmp_path: Path):
    st = await SQLiteStorage.open(tmp_path / "sub" / "qtune.sqlite3", genres=GENRES)
    yield st
    await st.close()


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


async def test_user_round_trip(storage: SQLiteStorage, tmp_path: Path) -> None:
    rec = UserRecord(7, GENRES, learner(), "Jazz", 12, 1000.5, 2000.25)
    await put(storage, rec)
    await storage.close()
    reopened = await SQLiteStorage.open(tmp_path / "sub" / "qtune.sqlite3", genres=GENRES)
    try:
        got = await reopened.get_user(7)
    finally:
        await reopened.close()
    assert got is not None
    np.testing.assert_array_equal(got.learner.q, rec.learner.q)
    np.testing.assert_array_equal(got.learner.visits, rec.learner.visits)
    np.testing.assert_array_equal(got.learner.reward_sum, rec.learner.reward_sum)
    assert got.learner.epsilon == 0.42
    assert (got.current_genre, got.rewards, got.created_at) == ("Jazz", 12, 1000.5)
    assert got.updated_at > 2000.25  # every write stamps the update time


async def test_unknown_user_is_none(storage: SQLiteStorage) -> None:
    assert await storage.get_user(123) is None
    assert await storage.delete_user(123) is False


async def test_recommendation_round_trip_and_pending(storage: SQLiteStorage) -> None:
    import time

    now = time.time()
    fresh = Recommendation(11, 7, 1, 2, "Rock", "Jazz", 0.5, now)
    old = Recommendation(12, 7, None, None, "Pop", "Pop", 1.0, now - 10_000)
    done = Recommendation(13, 7, 1, 2, "Pop", "Rock", 1.0, now, 10.0, now)
    for r in (fresh, old, done):
        await storage.add_recommendation(r)
    got = await storage.get_recommendation(11)
    assert got is not None
    assert (got.user_id, got.guild_id, got.channel_id, got.state, got.action) == (
        7,
        1,
        2,
        "Rock",
        "Jazz",
    )
    assert got.epsilon == 0.5
    assert got.created_at == pytest.approx(now, abs=0.5)  # whole seconds
    assert not got.rewarded
    assert [r.message_id for r in await storage.pending(3600)] == [11]
    assert [r.message_id for r in await storage.pending(86400)] == [12, 11]
    assert await storage.get_recommendation(99) is None


async def test_meta(storage: SQLiteStorage) -> None:
    assert await storage.get_meta("sync") is None
    await storage.set_meta("sync", "abc")
    await storage.set_meta("sync", "def")
    assert await storage.get_meta("sync") == "def"


async def test_delete_user_removes_table_and_recommendations(storage: SQLiteStorage) -> None:
    await put(storage, UserRecord.fresh(7, GENRES, learner()))
    await put(storage, UserRecord.fresh(8, GENRES, learner()))
    for mid, uid in ((1, 7), (2, 7), (3, 8)):
        await storage.add_recommendation(Recommendation(mid, uid, 1, 2, "Pop", "Rock", 1.0, 0.0))
    assert await storage.delete_user(7) is True
    assert await storage.get_user(7) is None
    assert await storage.get_recommendation(1) is None
    assert await storage.get_recommendation(2) is None
    assert await storage.get_recommendation(3) is not None
    assert await storage.get_user(8) is not None


# ----------------------------------------------------------------- genre changes
async def reopen_with(path: Path, genres: tuple[str, ...]) -> UserRecord:
    st = await SQLiteStorage.open(path, genres=genres)
    try:
        got = await st.get_user(7)
    finally:
        await st.close()
    assert got is not None
    return got


async def stored_named_table(path: Path) -> dict[tuple[str, str], float]:
    st = await SQLiteStorage.open(path, genres=GENRES)
    rec = UserRecord.fresh(7, GENRES, learner())
    rec.current_genre = "Jazz"
    await put(st, rec)
    await st.close()
    return {(s, a): rec.learner.q[i, j] for i, s in enumerate(GENRES) for j, a in enumerate(GENRES)}


async def test_new_genre_adds_zero_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    before = await stored_named_table(path)
    genres = (*GENRES, "Metal")
    got = await reopen_with(path, genres)
    assert got.genres == genres
    assert got.learner.q.shape == (6, 6)
    np.testing.assert_array_equal(got.learner.q[5], 0.0)
    np.testing.assert_array_equal(got.learner.q[:, 5], 0.0)
    np.testing.assert_array_equal(got.learner.visits[:, 5], 0)
    for (s, a), v in before.items():
        assert got.learner.q[genres.index(s), genres.index(a)] == v
    assert got.current_genre == "Jazz"


async def test_removed_genre_drops_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    before = await stored_named_table(path)
    genres = ("Pop", "Rock", "Classical", "HipHop")  # Jazz removed
    got = await reopen_with(path, genres)
    assert got.learner.q.shape == (4, 4)
    for (s, a), v in before.items():
        if "Jazz" not in (s, a):
            assert got.learner.q[genres.index(s), genres.index(a)] == v
    assert got.current_genre is None  # it was Jazz


async def test_reordered_genres_keep_values_under_their_names(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    before = await stored_named_table(path)
    genres = ("HipHop", "Jazz", "Pop", "Classical", "Rock")
    got = await reopen_with(path, genres)
    for (s, a), v in before.items():
        assert got.learner.q[genres.index(s), genres.index(a)] == v
    assert not np.array_equal(got.learner.q, learner().q)  # really moved


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
        got = await st.get_recommendation(5)
        dm = await st.get_recommendation(6)
    finally:
        await st.close()
    assert got == Recommendation(5, 7, 11, 22, "Rock", "Jazz", 0.5, 1700000000, 10.0, 1700000001)
    assert dm is not None
    assert (dm.guild_id, dm.channel_id, dm.state, dm.rewarded) == (None, None, "Pop", False)
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
