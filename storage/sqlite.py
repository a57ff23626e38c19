"""The SQLite implementation of :class:`storage.base.Storage`.

Speed and atomicity come from one design choice: every operation is a plain function
of the ``sqlite3`` connection, queued and run on the connection's own thread in
**batches**. A batch is one ``BEGIN IMMEDIATE … COMMIT`` holding every operation queued
while the previous batch ran (group commit), so

* one read-modify-write is one hop to the worker thread, never interleaved with
  another operation (the thread runs them one after another);
* one commit (one fsync with ``synchronous=FULL``) covers many events under load;
* a caller's future is resolved only after its batch committed: "applied" is durable.

Each operation runs in its own savepoint: one that raises (a callback bug, a constraint)
is rolled back alone and its caller gets the error; the rest of the batch commits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from bot.engine.qlearning import DEFAULT_GENRES, LearnerState
from storage.base import (
    COPIED_TABLES,
    RatingTally,
    Recommendation,
    RewardOutcome,
    RewardStep,
    SkipReward,
    Storage,
    StorageError,
    StorageUnavailable,
    UserRecord,
    with_learner,
)
from storage.locks import KeyedLocks
from storage.schema import GENRE_SEP, MIGRATIONS, SCHEMA_VERSION, decode_state, encode_state
from storage.sqlite_thread import SQLiteThread

log = logging.getLogger("qtune.storage")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

DEFAULT_DB = "data/qtune.sqlite3"
SQLITE_HEADER = b"SQLite format 3\x00"
USER_CACHE = 4096  # decoded users kept on the worker thread
BUSY_TIMEOUT_MS = 2000
MIN_ID = -(2**63)  # below every id (the console's message ids are negative)
MAX_BATCH = 512  # operations per transaction; bounds one batch's latency
SYNCHRONOUS = ("FULL", "NORMAL")

_REC_COLS = (
    "message_id, user_id, place, state, action, epsilon, created_at, reward, rewarded_at, "
    "propensity"
)
_USER_COLS = "user_id, genre_set, state, epsilon, current_genre, rewards, created_at, updated_at"
GUILD_TALLIES_SQL = (
    # The guild is interned with its channels as "p:guild/channel" (storage/schema.py): a
    # range on lookup's unique index finds its places, recommendations_place their rows.
    "SELECT user_id, action, count(*), sum(reward) FROM recommendations "
    "WHERE place IN (SELECT id FROM lookup WHERE value >= ? AND value < ?) "
    "AND rewarded_at IS NOT NULL GROUP BY user_id, action ORDER BY user_id, action"
)


def default_db_path() -> Path:
    """``QTUNE_DB`` from the environment, else ``data/qtune.sqlite3``."""
    return Path(os.environ.get("QTUNE_DB") or DEFAULT_DB)


def _ms(t: float) -> int:
    return round(t * 1000)


def _copy(rec: UserRecord) -> UserRecord:
    """A copy whose arrays the caller may mutate without touching the cache."""
    return UserRecord(
        rec.user_id,
        rec.genres,
        rec.learner.copy(),
        rec.current_genre,
        rec.rewards,
        rec.created_at,
        rec.updated_at,
    )


# ---------------------------------------------------------------- opening checks
def _check_path(path: Path) -> bool:
    """Fail with one clear line if ``path`` cannot hold a database; True if it exists.

    Reads only: a file that fails here is left byte-identical.
    """
    if path.is_dir():
        raise StorageError(f"database path {path} is a directory, not a file")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"database file {path} is not readable and writable")
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
        if head and head != SQLITE_HEADER:
            raise StorageError(f"{path} is not a SQLite database (wrong file header)")
        return bool(head)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder for database {path}: {exc}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create database {path}: folder is not writable")
    return False


def _inspect(path: Path) -> int:
    """The schema version of an existing database, read through a read-only connection."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database {path} is corrupt or unreadable: {exc}") from None
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database {path} has schema version {version}, newer than this qtune "
            f"understands ({SCHEMA_VERSION}); upgrade qtune or point QTUNE_DB elsewhere"
        )
    return version


def _setup(conn: sqlite3.Connection, synchronous: str) -> None:
    """Pragmas, then every pending migration in one transaction (worker thread)."""
    # Wait at most 2 s for another process's lock (a backup, a long query): a command must
    # answer within Discord's 3 s, and a reaction that meets a longer lock is retried by
    # the bot (bot/resilience.py), so a short wait loses nothing.
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"cannot switch the database to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # another process upgraded it meanwhile
            raise StorageError(f"database schema version {version} is newer than qtune's")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        if version < SCHEMA_VERSION:
            what = "created the schema" if version == 0 else f"migrated from schema {version}"
            log.info("database: %s to schema %d", what, SCHEMA_VERSION)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _storage_error(exc: BaseException) -> StorageError:
    """A busy file (another process's long transaction) is transient: the caller may retry."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StorageUnavailable(f"database is busy: {text}")
    return StorageError(f"database error: {text}")


class SQLiteStorage(Storage):
    """SQLite on one thread of its own: WAL, group commit, one hop per operation."""

    def __init__(
        self, worker: SQLiteThread, path: Path, genres: Sequence[str], synchronous: str
    ) -> None:
        self._worker = worker
        self.path = path
        self.genres = tuple(genres)
        self.synchronous = synchronous
        self._queue: list[tuple[Op, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._closed = False
        self._holds = KeyedLocks()  # the /simulate hold, per user id
        self._sets: dict[str, int] = {}  # genre list -> genre_sets.id (worker thread only)
        self._set_names: dict[int, tuple[str, ...]] = {}
        self._ids: dict[str, int] = {}  # interned lookup values (genre names, places)
        self._values: dict[int, str] = {}
        # Decoded users, worker thread only. Dropped whenever another connection commits
        # (PRAGMA data_version) or a batch rolls back, so it never serves stale data.
        self._users: dict[int, UserRecord] = {}
        self._data_version = -1

    # ------------------------------------------------------------------ life
    @classmethod
    async def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        genres: Sequence[str] = DEFAULT_GENRES,
        synchronous: str = "FULL",
    ) -> SQLiteStorage:
        """Open (creating if needed) and migrate; raise :class:`StorageError` if unusable."""
        path = Path(path) if path is not None else default_db_path()
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS:
            raise StorageError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if await asyncio.to_thread(_check_path, path):
            await asyncio.to_thread(_inspect, path)
        try:
            worker = await SQLiteThread.connect(path)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from None
        try:
            await worker.run(_setup, worker.conn, synchronous)
        except StorageError:
            await worker.close()
            raise
        except sqlite3.Error as exc:
            await worker.close()
            raise StorageError(f"cannot use database {path}: {exc}") from None
        return cls(worker, path, genres, synchronous)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._worker.close()

    # ------------------------------------------------------------ the engine
    async def _run(self, op: Op) -> Any:
        """Queue ``op`` and return its result once its batch has committed."""
        if self._closed:
            raise StorageError("the database is closed")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((op, fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    results = await self._worker.run(self._run_batch, [op for op, _ in batch])
                except Exception as exc:
                    err = exc if isinstance(exc, StorageError) else _storage_error(exc)
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(err)
                    continue
                for (_, fut), (ok, value) in zip(batch, results, strict=True):
                    if fut.done():  # the caller was cancelled; the op still committed
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
        finally:
            self._flusher = None

    def _run_batch(self, ops: list[Op]) -> list[tuple[bool, Any]]:
        """One transaction for all ``ops``, each in its own savepoint (worker thread).

        An op that fails is rolled back alone and gets the error; the others commit.
        """
        conn = self._worker.conn
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:  # another connection committed
                self._users.clear()
                self._data_version = version
            for op in ops:
                conn.execute("SAVEPOINT op")
                try:
                    value = op(conn)
                except Exception as exc:
                    if not conn.in_transaction:  # SQLite gave up the whole transaction
                        raise
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self._forget()  # the caches may hold what was just rolled back
                    if isinstance(exc, sqlite3.Error):
                        exc = StorageError(f"database error: {exc}")
                    results.append((False, exc))
                    continue
                conn.execute("RELEASE op")
                results.append((True, value))
            conn.execute("COMMIT")
        except BaseException:
            self._forget()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    def _forget(self) -> None:
        """Drop every worker-side cache (after a rollback)."""
        for cache in (self._sets, self._set_names, self._ids, self._values, self._users):
            cache.clear()

    # ------------------------------------------------------ per-user holding
    async def _run_for(self, user_id: int, op: Op) -> Any:
        """Run ``op``, first waiting for any hold on ``user_id`` (no lock when none)."""
        if user_id not in self._holds:
            return await self._run(op)
        async with self._holds.hold(user_id):
            return await self._run(op)

    # ------------------------------------------------ rows (worker thread)
    def _intern(self, conn: sqlite3.Connection, value: str) -> int:
        found = self._ids.get(value)
        if found is None:
            conn.execute("INSERT OR IGNORE INTO lookup(value) VALUES (?)", (value,))
            found = conn.execute("SELECT id FROM lookup WHERE value = ?", (value,)).fetchone()[0]
            self._ids[value] = found
            self._values[found] = value
        return found

    def _value(self, conn: sqlite3.Connection, id_: int) -> str:
        value = self._values.get(id_)
        if value is None:
            value = conn.execute("SELECT value FROM lookup WHERE id = ?", (id_,)).fetchone()[0]
            self._values[id_] = value
            self._ids[value] = id_
        return value

    def _rec(self, conn: sqlite3.Connection, row: Sequence[Any]) -> Recommendation:
        mid, uid, place, s, a, eps, created, reward, rewarded, propensity = row
        guild, _, channel = self._value(conn, place)[2:].partition("/")
        return Recommendation(
            mid,
            uid,
            int(guild) if guild else None,
            int(channel) if channel else None,
            self._value(conn, s)[2:],
            self._value(conn, a)[2:],
            float(eps),
            float(created),
            None if reward is None else float(reward),
            None if rewarded is None else float(rewarded),
            None if propensity is None else float(propensity),
        )

    def _set_id(self, conn: sqlite3.Connection, genres: tuple[str, ...]) -> int:
        key = GENRE_SEP.join(genres)
        found = self._sets.get(key)
        if found is None:
            conn.execute("INSERT OR IGNORE INTO genre_sets(names) VALUES (?)", (key,))
            found = conn.execute("SELECT id FROM genre_sets WHERE names = ?", (key,)).fetchone()[0]
            self._sets[key] = found
        return found

    def _set_genres(self, conn: sqlite3.Connection, set_id: int) -> tuple[str, ...]:
        names = self._set_names.get(set_id)
        if names is None:
            row = conn.execute("SELECT names FROM genre_sets WHERE id = ?", (set_id,)).fetchone()
            names = tuple(row[0].split(GENRE_SEP))
            self._set_names[set_id] = names
        return names

    def _load_user(self, conn: sqlite3.Connection, user_id: int) -> UserRecord | None:
        cached = self._users.get(user_id)
        if cached is not None:
            return _copy(cached)
        row = conn.execute(f"SELECT {_USER_COLS} FROM users WHERE user_id = ?", (user_id,))
        row = row.fetchone()
        if row is None:
            return None
        uid, set_id, blob, eps, current, rewards, created, updated = row
        genres = self._set_genres(conn, set_id)
        learner = decode_state(blob, len(genres), eps)
        record = UserRecord(uid, genres, learner, current, rewards, created / 1000, updated / 1000)
        self._remember(record)
        return _copy(record)

    def _remember(self, rec: UserRecord) -> None:
        if len(self._users) >= USER_CACHE and rec.user_id not in self._users:
            del self._users[next(iter(self._users))]  # the oldest entry
        self._users[rec.user_id] = rec

    def _save_user(self, conn: sqlite3.Connection, rec: UserRecord) -> None:
        st = rec.learner
        conn.execute(
            f"INSERT OR REPLACE INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.user_id,
                self._set_id(conn, rec.genres),
                encode_state(st),
                float(st.epsilon),
                rec.current_genre,
                int(rec.rewards),
                _ms(rec.created_at),
                _ms(rec.updated_at),
            ),
        )
        self._remember(_copy(rec))

    def _update_op(self, user_id: int, fn: Callable[[UserRecord | None], tuple[Any, T]]) -> Op:
        def op(conn: sqlite3.Connection) -> T:
            new, result = fn(self._load_user(conn, user_id))
            if new is not None:
                new.updated_at = time.time()
                self._save_user(conn, new)
            return result

        return op

    # ------------------------------------------------------------------ users
    async def get_user(self, user_id: int) -> UserRecord | None:
        return await self._run(lambda conn: self._load_user(conn, user_id))

    async def set_current_genre(
        self, user_id: int, genre: str, fresh: Callable[[], UserRecord]
    ) -> UserRecord:
        def op(conn: sqlite3.Connection) -> UserRecord:
            now = time.time()
            if self._touch_genre(conn, user_id, genre, now):
                found = self._load_user(conn, user_id)
                assert found is not None
                return found
            rec = fresh()
            rec.current_genre, rec.updated_at = genre, now
            self._save_user(conn, rec)
            return rec

        return await self._run(op)

    def _touch_genre(self, conn: sqlite3.Connection, user_id: int, genre: str, now: float) -> bool:
        """Set a stored user's current genre (False: no such user). Only two columns
        change: the table blob is neither decoded, re-encoded nor rewritten."""
        sql = "UPDATE users SET current_genre = ?, updated_at = ? WHERE user_id = ?"
        if not conn.execute(sql, (genre, _ms(now), user_id)).rowcount:
            return False
        cached = self._users.get(user_id)
        if cached is not None:  # the cache holds its own copy: update it in place
            cached.current_genre, cached.updated_at = genre, now
        return True

    async def hold_and_update(
        self,
        user_id: int,
        work: Callable[[UserRecord | None], Awaitable[tuple[LearnerState, T]]],
    ) -> T:
        async with self._holds.hold(user_id):
            learner, result = await work(await self.get_user(user_id))

            def fn(latest: UserRecord | None) -> tuple[UserRecord, None]:
                if latest is None:
                    return UserRecord.fresh(user_id, self.genres, learner), None
                return with_learner(latest, self.genres, learner), None

            await self._run(self._update_op(user_id, fn))
            return result

    async def delete_user(self, user_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            recs = conn.execute("DELETE FROM recommendations WHERE user_id = ?", (user_id,))
            users = conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            self._users.pop(user_id, None)
            return recs.rowcount + users.rowcount > 0

        return await self._run_for(user_id, op)

    # -------------------------------------------------------- recommendations
    def _save_rec(self, conn: sqlite3.Connection, rec: Recommendation) -> None:
        sql = f"INSERT OR REPLACE INTO recommendations ({_REC_COLS}) VALUES ({', '.join('?' * 10)})"
        place = f"p:{'' if rec.guild_id is None else rec.guild_id}/"
        place += "" if rec.channel_id is None else str(rec.channel_id)
        row = (
            rec.message_id,
            rec.user_id,
            self._intern(conn, place),
            self._intern(conn, "g:" + rec.state),
            self._intern(conn, "g:" + rec.action),
            float(rec.epsilon),
            round(rec.created_at),
            rec.reward,
            None if rec.rewarded_at is None else round(rec.rewarded_at),
            None if rec.propensity is None else float(rec.propensity),
        )
        conn.execute(sql, row)

    async def add_recommendation(self, rec: Recommendation) -> None:
        def op(conn: sqlite3.Connection) -> None:
            self._save_rec(conn, rec)
            self._touch_genre(conn, rec.user_id, rec.state, time.time())

        await self._run(op)

    def _load_rec(self, conn: sqlite3.Connection, message_id: int) -> Recommendation | None:
        sql = f"SELECT {_REC_COLS} FROM recommendations WHERE message_id = ?"
        row = conn.execute(sql, (message_id,)).fetchone()
        return None if row is None else self._rec(conn, row)

    async def apply_reward(
        self, message_id: int, user_id: int, step: RewardStep[T]
    ) -> RewardOutcome[T]:
        def op(conn: sqlite3.Connection) -> RewardOutcome[T]:
            rec = self._load_rec(conn, message_id)
            if rec is None:
                return RewardOutcome("not_a_recommendation", None)
            if rec.user_id != user_id:
                return RewardOutcome("not_requester", rec)
            if rec.rewarded:
                return RewardOutcome("already_rewarded", rec)
            try:
                reward, user, value = step(rec, self._load_user(conn, user_id))
            except SkipReward as skip:
                return RewardOutcome(skip.reason, rec)
            now = time.time()
            user.updated_at = now
            self._save_user(conn, user)
            conn.execute(
                "UPDATE recommendations SET reward = ?, rewarded_at = ? WHERE message_id = ?",
                (float(reward), round(now), message_id),
            )
            done = replace(rec, reward=float(reward), rewarded_at=float(round(now)))
            return RewardOutcome("applied", done, value)

        return await self._run_for(user_id, op)

    async def pending(self, max_age_s: float = 86400, limit: int = 1000) -> list[Recommendation]:
        since = round(time.time() - max_age_s)
        sql = (
            f"SELECT {_REC_COLS} FROM recommendations WHERE rewarded_at IS NULL "
            "AND created_at >= ? ORDER BY created_at LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> list[Recommendation]:
            return [self._rec(conn, r) for r in conn.execute(sql, (since, limit))]

        return await self._run(op)

    async def recommendations_of(self, user_id: int) -> list[Recommendation]:
        sql = (
            f"SELECT {_REC_COLS} FROM recommendations WHERE user_id = ? "
            "ORDER BY created_at, message_id"
        )

        def op(conn: sqlite3.Connection) -> list[Recommendation]:
            return [self._rec(conn, r) for r in conn.execute(sql, (user_id,))]

        return await self._run(op)

    async def logged_rewards(self, limit: int = 1_000_000) -> list[Recommendation]:
        sql = (
            f"SELECT {_REC_COLS} FROM recommendations WHERE rewarded_at IS NOT NULL "
            "AND propensity IS NOT NULL ORDER BY created_at, message_id LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> list[Recommendation]:
            return [self._rec(conn, r) for r in conn.execute(sql, (limit,))]

        return await self._run(op)

    async def guild_tallies(self, guild_id: int) -> list[RatingTally]:
        def op(conn: sqlite3.Connection) -> list[RatingTally]:
            prefix = f"p:{int(guild_id)}/"  # "p:guild/channel": '0' is the byte after '/'
            rows = conn.execute(GUILD_TALLIES_SQL, (prefix, prefix[:-1] + "0")).fetchall()
            return [
                RatingTally(uid, self._value(conn, a)[2:], n, float(total))
                for uid, a, n, total in rows
            ]

        return await self._run(op)

    # --------------------------------------------------------------- metadata
    async def get_meta(self, key: str) -> str | None:
        sql = "SELECT value FROM meta WHERE key = ?"
        row = await self._run(lambda conn: conn.execute(sql, (key,)).fetchone())
        return None if row is None else row[0]

    async def set_meta(self, key: str, value: str) -> None:
        sql = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
        await self._run(lambda conn: conn.execute(sql, (key, str(value))) and None)

    # ------------------------------------------------- bulk copy (copy-db)
    async def export_users(self, after: int | None, limit: int) -> list[UserRecord]:
        sql = f"SELECT {_USER_COLS} FROM users WHERE user_id > ? ORDER BY user_id LIMIT ?"

        def op(conn: sqlite3.Connection) -> list[UserRecord]:
            out = []
            for row in conn.execute(sql, (MIN_ID if after is None else after, limit)):
                uid, set_id, blob, eps, current, rewards, created, updated = row
                genres = self._set_genres(conn, set_id)
                learner = decode_state(blob, len(genres), eps)
                out.append(
                    UserRecord(
                        uid, genres, learner, current, rewards, created / 1000, updated / 1000
                    )
                )
            return out

        return await self._run(op)

    async def export_recommendations(self, after: int | None, limit: int) -> list[Recommendation]:
        sql = (
            f"SELECT {_REC_COLS} FROM recommendations WHERE message_id > ? "
            "ORDER BY message_id LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> list[Recommendation]:
            rows = conn.execute(sql, (MIN_ID if after is None else after, limit))
            return [self._rec(conn, r) for r in rows]

        return await self._run(op)

    async def export_meta(self) -> dict[str, str]:
        rows = await self._run(lambda conn: conn.execute("SELECT key, value FROM meta").fetchall())
        return dict(rows)

    async def import_rows(
        self,
        users: Sequence[UserRecord],
        recs: Sequence[Recommendation],
        meta: dict[str, str] | None = None,
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for user in users:
                self._users.pop(user.user_id, None)
                self._save_user(conn, user)
            for rec in recs:
                self._save_rec(conn, rec)
            for key, value in (meta or {}).items():
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

        await self._run(op)

    async def counts(self) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            return {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in COPIED_TABLES
            }

        return await self._run(op)

    async def clear(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for table in (*COPIED_TABLES, "meta"):
                conn.execute(f"DELETE FROM {table}")
            self._users.clear()

        await self._run(op)
