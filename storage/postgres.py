"""The asyncpg implementation of :class:`storage.base.Storage`: many bot processes, one
PostgreSQL database (``QTUNE_DB=postgresql://user[:password]@host[:port]/dbname``).

Why it is safe across processes:

* **Rewards: optimistic, no lock.** A batch of rewards is read in one statement outside
  any transaction, each with its user row's version (``xmin``, the transaction that
  wrote that row version; every write makes a new one), the learner steps run here, and
  one statement writes every table *where the row is still that version* and marks
  exactly those recommendations rewarded. A reward whose user another process wrote in
  between is read and stepped again (after three tries, it takes the lock below). That
  is two round trips and one WAL flush per batch, and nothing is held open.
* **Everything else: one user, one writer.** ``update_user``, the end of a /simulate,
  ``delete_user``, and a reward for a user with no row yet run in one short transaction
  that first takes ``pg_advisory_xact_lock(user_id)``: a lock on the *user*, not on a
  row, so it also covers a user whose row does not exist yet (a ``SELECT … FOR UPDATE``
  on a missing row locks nothing, and two processes would both insert). The row itself
  is then read ``FOR UPDATE``, so an optimistic batch cannot slip a write in before the
  COMMIT (it waits, then finds a newer version); a row that was missing and appears
  meanwhile (/nowplaying creates it without the lock) is not overwritten: the
  transaction starts again. PostgreSQL releases the locks at COMMIT or ROLLBACK,
  including when the connection dies.
* **A reward at most once.** The recommendation is marked with
  ``UPDATE … WHERE rewarded_at IS NULL``, in the same statement (or transaction) as its
  user's table, and only for a user whose write succeeded; since every reward also writes
  its user's row, a second reward of the same recommendation finds a newer row version
  (optimistic) or the mark already set (locked), so it is never applied twice.
* **The /simulate hold** is a lease row in ``user_holds`` (holder, expiry), taken (with
  a new version of the user's row, so an optimistic reward read before it fails its
  check and finds the lease) and renewed in short transactions while the simulation
  runs in the worker. A writer that finds another holder's live lease rolls back and
  waits for it (an event inside this process, polling across processes), then applies
  on top of the pretrained table. A holder that dies stops renewing, and its lease
  expires after ``HOLD_TTL`` seconds.
* **Faults.** A dropped connection, a refused connect or a restarting server is retried
  with backoff for ``retry_for`` seconds, then raised as :class:`StorageUnavailable`; the
  pool replaces dead connections by itself, so the next call after the server is back
  simply works. Deadlocks and serialization failures are retried at once.

Durability: a call returns after PostgreSQL's COMMIT, which with the server's default
``synchronous_commit = on`` means the WAL reached disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

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
from storage.factory import safe_url
from storage.pg_schema import PG_MIGRATIONS
from storage.pg_sql import (
    ACQUIRE,
    BATCH_GENRE,
    BATCH_READ,
    BATCH_RECS_AND_GENRES,
    BATCH_WRITE,
    GUILD_TALLIES_SQL,
    HOLDER,
    REC_COLS,
    REWARD_READ,
    REWARD_WRITE,
    SET_GENRE,
    TOUCH_USER,
    UPSERT_REC,
    UPSERT_USER,
    USER_COLS,
    batch_args,
    raw_user,
    rec_args,
    rec_of,
    user_args,
)

T = TypeVar("T")
Fn = Callable[[asyncpg.Connection], Awaitable[Any]]

PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
POOL_SIZE = 10
RETRY_FOR = 2.0  # seconds one call retries a dropped connection before giving up
HOLD_TTL = 30.0  # seconds a /simulate lease lives without renewal
HOLD_POLL = (0.02, 0.1)  # seconds between checks for another process's lease (jittered)
CONFLICT_RETRIES = 20
OPTIMISTIC_TRIES = 3  # stale optimistic writes of one reward before it takes the lock
MAX_BATCH = 256  # rewards per transaction; bounds one batch's latency
FLUSHERS = 3  # batches of one kind in flight at once (two sharing a user queue on its lock)
MIN_ID = -(2**63)  # below every id (the console's message ids are negative)
# The two-int advisory key space never overlaps the one-bigint space used for user ids.
MIGRATION_LOCK = (0x71747565, 1)  # "qtue"


@dataclass(slots=True)
class _Queued:
    """A reward waiting for its batch."""

    message_id: int
    user_id: int
    step: RewardStep[Any]
    fut: asyncio.Future[RewardOutcome[Any]]
    stale: int = 0  # optimistic writes that found the user's row changed since the read


class _Batcher:
    """Group commit for one kind of single-statement write (a recommendation, a genre):
    every call made while a batch runs joins the next one. At most one item per key in a
    batch, so a batch never touches a row twice; later ones wait for the next batch."""

    def __init__(
        self,
        storage: PostgresStorage,
        run: Callable[[list[Any], asyncpg.Connection], Awaitable[list[Any]]],
        key: Callable[[Any], Any],
    ) -> None:
        self._storage = storage
        self._run = run
        self._key = key
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def submit(self, item: Any) -> Any:
        if self._storage._closed:
            raise StorageError("the database is closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if len(self._flushers) < FLUSHERS:
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await fut

    async def drain(self) -> None:
        if self._flushers:
            await asyncio.shield(asyncio.gather(*self._flushers, return_exceptions=True))

    async def _flush(self) -> None:
        while self._queue:
            batch: list[tuple[Any, asyncio.Future[Any]]] = []
            later: list[tuple[Any, asyncio.Future[Any]]] = []
            keys: set[Any] = set()
            for entry in self._queue:
                key = self._key(entry[0])
                if key in keys or len(batch) >= MAX_BATCH:
                    later.append(entry)
                else:
                    keys.add(key)
                    batch.append(entry)
            self._queue = later
            items = [item for item, _ in batch]
            try:
                results = await self._storage._op(partial(self._run, items), tx=False)
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)


_STALE = object()  # a batch result: the user's row changed between the read and the write
_MISSING = object()  # a batch result: the user has no row yet


class _Stale(Exception):
    """Raised inside a transaction: a row read as missing exists now; roll back, retry."""


class _Held(Exception):
    """Raised inside a transaction: another holder's lease is live; roll back and wait."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


_CONFLICTS = (
    _Stale,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
)


def _is_transient(exc: BaseException) -> bool:
    """A failure that another attempt (after a pause) may not meet: connection-level."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError):
        return True
    if isinstance(exc, asyncpg.exceptions.OperatorInterventionError):  # shutdown, starting
        return not isinstance(exc, asyncpg.QueryCanceledError)
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _reset(conn: asyncpg.Connection) -> None:
    """Pool reset: only end a transaction left open (we keep no session state).

    asyncpg's default reset costs a round trip per release.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _migrate(conn: asyncpg.Connection, where: str) -> int:
    """Create or upgrade the schema in one transaction; two starting processes queue."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_LOCK)
        known = await conn.fetchval("SELECT to_regclass('qtune_schema') IS NOT NULL")
        if not known:
            if await conn.fetchval("SELECT to_regclass('users') IS NOT NULL"):
                raise StorageError(
                    f"database {where} has a users table but no qtune_schema: it is not a "
                    "qtune database; point QTUNE_DB at an empty one"
                )
            await conn.execute("CREATE TABLE qtune_schema (version integer NOT NULL)")
            await conn.execute("INSERT INTO qtune_schema VALUES (0)")
        version = await conn.fetchval("SELECT version FROM qtune_schema")
        if version > PG_SCHEMA_VERSION:
            raise StorageError(
                f"database {where} has schema version {version}, newer than this qtune "
                f"understands ({PG_SCHEMA_VERSION}); upgrade qtune or point QTUNE_DB elsewhere"
            )
        for number in range(version + 1, PG_SCHEMA_VERSION + 1):
            for statement in PG_MIGRATIONS[number - 1]:
                await conn.execute(statement)
        await conn.execute("UPDATE qtune_schema SET version = $1", PG_SCHEMA_VERSION)
        return int(version)


@contextlib.asynccontextmanager
async def _committed(conn: asyncpg.Connection, begin: str) -> AsyncIterator[None]:
    """Run the block in a transaction opened by ``begin``: COMMIT after it, ROLLBACK on any error.

    ``begin`` may take advisory locks in the same round trip; the rollback releases them.
    """
    await conn.execute(begin)
    try:
        yield
        await conn.execute("COMMIT")
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise


class PostgresStorage(Storage):
    """PostgreSQL through an asyncpg pool; see the module docstring for the locking."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        genres: Sequence[str],
        *,
        retry_for: float = RETRY_FOR,
        hold_ttl: float = HOLD_TTL,
    ) -> None:
        self._pool = pool
        self.url = safe_url(url)
        self.genres = tuple(genres)
        self.retry_for = float(retry_for)
        self.hold_ttl = float(hold_ttl)
        self._closed = False
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Leases this process holds: user id -> set when released (waiters here use it).
        self._released: dict[int, asyncio.Event] = {}
        self._rewards: list[_Queued] = []  # rewards waiting for the next batch
        self._flushers: set[asyncio.Task[None]] = set()
        self._singles: set[asyncio.Task[None]] = set()
        self._busy: set[int] = set()  # users in a reward batch in flight here
        self.stale_writes = 0  # optimistic reward writes that found a newer row (retried)
        self._recs = _Batcher(self, self._rec_batch, lambda r: r.message_id)
        self._genres = _Batcher(self, self._genre_batch, lambda g: g[0])

    # ------------------------------------------------------------------ life
    @classmethod
    async def open(
        cls,
        url: str,
        *,
        genres: Sequence[str] = DEFAULT_GENRES,
        pool_size: int = POOL_SIZE,
        retry_for: float = RETRY_FOR,
        hold_ttl: float = HOLD_TTL,
        connect_timeout: float = 10.0,
    ) -> PostgresStorage:
        """Connect, create or migrate the schema; raise :class:`StorageError` if unusable."""
        where = safe_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                reset=_reset,
                timeout=connect_timeout,
                max_inactive_connection_lifetime=60.0,
            )
        except asyncpg.InvalidCatalogNameError:
            name = urlsplit(url).path.lstrip("/") or "?"
            raise StorageError(
                f"PostgreSQL database {name!r} does not exist at {where}; "
                f"create it first (createdb -O ROLE {name})"
            ) from None
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise StorageError(f"PostgreSQL refused the login for {where}: {exc}") from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            message = f"cannot connect to PostgreSQL at {where}: {_describe(exc)}"
            raise StorageError(message) from None
        except ValueError as exc:  # a malformed URL
            raise StorageError(f"QTUNE_DB is not a valid PostgreSQL URL: {exc}") from None
        try:
            async with pool.acquire() as conn:
                await _migrate(conn, where)
        except StorageError:
            await pool.close()
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await pool.close()
            raise StorageError(f"cannot set up database {where}: {_describe(exc)}") from None
        return cls(pool, url, genres, retry_for=retry_for, hold_ttl=hold_ttl)

    async def close(self) -> None:
        if self._closed:
            return
        if self._flushers:  # queued rewards finish first
            await asyncio.gather(*self._flushers, return_exceptions=True)
        if self._singles:
            await asyncio.gather(*self._singles, return_exceptions=True)
        await self._recs.drain()
        await self._genres.drain()
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), 10.0)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._pool.terminate()

    # ------------------------------------------------------------ the engine
    async def _op(
        self,
        fn: Fn,
        *,
        user_id: int | None = None,
        tx: bool = True,
        wait_hold: bool = False,
        holder: str | None = None,
    ) -> Any:
        """Run ``fn(conn)``, in a transaction locking ``user_id`` when given.

        With ``wait_hold`` the transaction first checks the user's lease and, when another
        holder has it, rolls back, waits and starts again. Connection failures are
        retried for ``retry_for`` seconds, then raised as :class:`StorageUnavailable`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay, conflicts = 0.05, 0
        while True:
            if self._closed:
                raise StorageError("the database is closed")
            try:
                async with self._pool.acquire() as conn:
                    if not tx:
                        return await fn(conn)
                    return await self._transaction(conn, fn, user_id, wait_hold, holder)
            except _Held as held:
                assert user_id is not None
                await self._wait_for(user_id, held.holder)
                deadline = loop.time() + self.retry_for
            except _CONFLICTS as exc:
                conflicts += 1
                if conflicts > CONFLICT_RETRIES:
                    raise StorageError(f"database conflict: {_describe(exc)}") from exc
            except StorageError:
                raise
            except Exception as exc:
                if not _is_transient(exc):
                    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
                        raise StorageError(f"database error: {_describe(exc)}") from exc
                    raise
                if self._closed or loop.time() + delay > deadline:
                    raise StorageUnavailable(
                        f"cannot reach PostgreSQL at {self.url}: {_describe(exc)}"
                    ) from exc
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 0.5)

    async def _transaction(
        self,
        conn: asyncpg.Connection,
        fn: Fn,
        user_id: int | None,
        wait_hold: bool,
        holder: str | None,
    ) -> Any:
        # BEGIN and the user's lock in one round trip (simple protocol; an int literal).
        if user_id is None:
            begin = "BEGIN"
        else:
            begin = f"BEGIN; SELECT pg_advisory_xact_lock({int(user_id)})"
        async with _committed(conn, begin):
            if wait_hold:
                current = await conn.fetchval(HOLDER, user_id)
                if current is not None and current != holder:
                    raise _Held(current)
            return await fn(conn)

    async def _wait_for(self, user_id: int, holder: str) -> None:
        """Wait until ``holder`` may have released ``user_id``'s lease."""
        released = self._released.get(user_id)
        if released is not None and holder.startswith(self._me):
            await released.wait()
        else:
            await asyncio.sleep(random.uniform(*HOLD_POLL))

    # ------------------------------------------------------------------ users
    async def get_user(self, user_id: int) -> UserRecord | None:
        async def fn(conn: asyncpg.Connection) -> UserRecord | None:
            row = await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE user_id = $1", user_id)
            return None if row is None else raw_user(row)

        return await self._op(fn, tx=False)

    async def _write_user(
        self,
        user_id: int,
        fn: Callable[[UserRecord | None], tuple[UserRecord | None, T]],
        holder: str | None = None,
    ) -> T:
        async def op(conn: asyncpg.Connection) -> T:
            if holder is not None and await conn.fetchval(HOLDER, user_id) != holder:
                raise StorageError(
                    f"the hold on user {user_id} expired before the simulation finished"
                )
            sql = f"SELECT {USER_COLS} FROM users WHERE user_id = $1 FOR UPDATE"
            row = await conn.fetchrow(sql, user_id)
            read = None if row is None else raw_user(row)
            seen = None if read is None else replace(read)  # fn may change it in place
            new, result = fn(read)
            if new is not None:
                new.updated_at = time.time()
                if await conn.execute(UPSERT_USER, *user_args(new, seen)) == "INSERT 0 0":
                    raise _Stale  # created meanwhile (/nowplaying): read it and start again
            return result

        return await self._op(op, user_id=user_id, wait_hold=True, holder=holder)

    async def update_user(
        self, user_id: int, fn: Callable[[UserRecord | None], tuple[UserRecord | None, T]]
    ) -> T:
        return await self._write_user(user_id, fn)

    async def set_current_genre(
        self, user_id: int, genre: str, fresh: Callable[[], UserRecord]
    ) -> UserRecord:
        # Batched with the others waiting; neither the user's lock nor the lease: a long
        # /simulate never delays a recommendation, and learner writes keep the genre set
        # here ($9 above).
        row = await self._genres.submit((user_id, genre, fresh))
        rec = raw_user(row)
        assert rec is not None
        return rec

    async def _genre_batch(
        self, batch: list[tuple[int, str, Callable[[], UserRecord]]], conn: asyncpg.Connection
    ) -> list[Any]:
        """One UPDATE for the batch (autocommit); a new user is then inserted alone."""
        now = time.time()
        rows = await conn.fetch(
            BATCH_GENRE, [b[0] for b in batch], [b[1] for b in batch], [now] * len(batch)
        )
        found = {row[0]: row for row in rows}
        out: list[Any] = []
        for user_id, genre, fresh in batch:
            row = found.get(user_id)
            if row is None:  # a new user (``fresh`` is called only then)
                new = fresh()
                new.current_genre, new.updated_at = genre, now
                row = await conn.fetchrow(SET_GENRE, *user_args(new)[:8])
            out.append(row)
        return out

    async def hold_and_update(
        self,
        user_id: int,
        work: Callable[[UserRecord | None], Awaitable[tuple[LearnerState, T]]],
    ) -> T:
        token = f"{self._me}:{uuid.uuid4().hex[:8]}"
        await self._acquire(user_id, token)
        released = self._released[user_id] = asyncio.Event()
        renewer = asyncio.create_task(self._renew(user_id, token))
        try:
            learner, result = await work(await self.get_user(user_id))

            def fn(latest: UserRecord | None) -> tuple[UserRecord, None]:
                if latest is None:
                    return UserRecord.fresh(user_id, self.genres, learner), None
                return with_learner(latest, self.genres, learner), None

            await self._write_user(user_id, fn, holder=token)
            return result
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                await self._release(user_id, token)
            finally:
                if self._released.get(user_id) is released:
                    del self._released[user_id]
                released.set()

    async def _acquire(self, user_id: int, token: str) -> None:
        async def take(conn: asyncpg.Connection) -> str | None:
            holder = await conn.fetchval(ACQUIRE, user_id, token, self.hold_ttl)
            if holder == token:
                # A new version of the user's row: an optimistic reward that read it before
                # the lease existed fails its check, re-reads, and finds the lease.
                await conn.execute(TOUCH_USER, user_id)
            return holder

        while True:
            if await self._op(take, user_id=user_id) == token:
                return
            holder = await self._op(lambda conn: conn.fetchval(HOLDER, user_id), tx=False)
            if holder is not None:
                await self._wait_for(user_id, holder)

    async def _renew(self, user_id: int, token: str) -> None:
        sql = (
            "UPDATE user_holds SET expires_at = now() + $3 * interval '1 second' "
            "WHERE user_id = $1 AND holder = $2"
        )
        while True:
            await asyncio.sleep(self.hold_ttl / 3)
            with contextlib.suppress(StorageError):  # a short outage: try again later
                await self._op(lambda c: c.execute(sql, user_id, token, self.hold_ttl), tx=False)

    async def _release(self, user_id: int, token: str) -> None:
        sql = "DELETE FROM user_holds WHERE user_id = $1 AND holder = $2"
        with contextlib.suppress(StorageError):  # else the lease expires within HOLD_TTL
            await self._op(lambda conn: conn.execute(sql, user_id, token), tx=False)

    async def delete_user(self, user_id: int) -> bool:
        async def op(conn: asyncpg.Connection) -> bool:
            recs = await conn.execute("DELETE FROM recommendations WHERE user_id = $1", user_id)
            users = await conn.execute("DELETE FROM users WHERE user_id = $1", user_id)
            return recs != "DELETE 0" or users != "DELETE 0"

        return await self._op(op, user_id=user_id, wait_hold=True)

    # -------------------------------------------------------- recommendations
    async def add_recommendation(self, rec: Recommendation) -> None:
        await self._recs.submit(rec)  # batched with the others waiting: one statement

    async def _rec_batch(self, batch: list[Recommendation], conn: asyncpg.Connection) -> list[Any]:
        columns = [list(c) for c in zip(*(rec_args(r) for r in batch), strict=True)]
        await conn.execute(BATCH_RECS_AND_GENRES, *columns, time.time())
        return [None] * len(batch)

    async def get_recommendation(self, message_id: int) -> Recommendation | None:
        async def fn(conn: asyncpg.Connection) -> Recommendation | None:
            sql = f"SELECT {REC_COLS} FROM recommendations WHERE message_id = $1"
            row = await conn.fetchrow(sql, message_id)
            return None if row is None else rec_of(row)

        return await self._op(fn, tx=False)

    async def apply_reward(
        self, message_id: int, user_id: int, step: RewardStep[T]
    ) -> RewardOutcome[T]:
        """Queued and applied in a batch with the others waiting (see :meth:`_flush`)."""
        if self._closed:
            raise StorageError("the database is closed")
        fut: asyncio.Future[RewardOutcome[Any]] = asyncio.get_running_loop().create_future()
        self._rewards.append(_Queued(message_id, user_id, step, fut))
        if len(self._flushers) < FLUSHERS:  # a few batches in flight, on separate connections
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await fut

    async def _flush(self) -> None:
        """Group commit, as SQLite's storage does: every reward queued while one batch
        runs joins the next, so two round trips (a read, then one write statement that
        is its own transaction: one WAL flush) cover many reactions. A batch holds at
        most one reward per user, and a user in one batch of this process waits for the
        next (so this process never races itself); another process's write to the same
        user between the read and the write fails the optimistic check, and that reward
        is read and stepped again. Batches take no locks, so they never deadlock."""
        while self._rewards:
            batch: list[_Queued] = []
            later: list[_Queued] = []
            users: set[int] = set()
            for q in self._rewards:
                busy = q.user_id in users or q.user_id in self._busy
                if busy or len(batch) >= MAX_BATCH:
                    later.append(q)
                else:
                    users.add(q.user_id)
                    batch.append(q)
            self._rewards = later
            if not batch:
                return  # only users of batches in flight: their flushers take them next
            self._busy |= users
            try:
                results = await self._op(partial(self._reward_batch, batch), tx=False)
            except Exception as exc:
                for q in batch:
                    if not q.fut.done():
                        q.fut.set_exception(exc)
                continue
            finally:
                self._busy -= users
            retry: list[_Queued] = []
            for q, result in zip(batch, results, strict=True):
                if result is _STALE and q.stale < OPTIMISTIC_TRIES:
                    q.stale += 1
                    retry.append(q)
                elif isinstance(result, _Held) or result is _STALE or result is _MISSING:
                    self._spawn_single(q)  # waits for the hold / takes the user's lock
                elif q.fut.done():
                    continue
                elif isinstance(result, BaseException):
                    q.fut.set_exception(result)
                else:
                    q.fut.set_result(result)
            self._rewards[:0] = retry  # first in the next batch

    def _spawn_single(self, q: _Queued) -> None:
        async def run() -> None:
            try:
                result = await self._apply_one(q.message_id, q.user_id, q.step)
            except BaseException as exc:
                if not q.fut.done():
                    q.fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if not q.fut.done():
                    q.fut.set_result(result)

        task = asyncio.create_task(run())
        self._singles.add(task)
        task.add_done_callback(self._singles.discard)

    async def _reward_batch(self, batch: list[_Queued], conn: asyncpg.Connection) -> list[Any]:
        """Read, step, write (optimistically, no transaction held open); per reward an
        outcome, an exception, _Held, _STALE (write again) or _MISSING (no user row)."""
        rows = await conn.fetch(
            BATCH_READ, [q.message_id for q in batch], [q.user_id for q in batch]
        )
        by_index = {row[0]: row for row in rows}
        results: list[Any] = []
        writes: list[tuple[tuple[Any, ...], bool, float, int, str]] = []
        written: list[int] = []  # indices of the rewards written
        now = time.time()
        for i, q in enumerate(batch):
            outcome = self._reward_outcome(by_index[i + 1], q, now)
            if isinstance(outcome, tuple):  # applied: write it
                result, args = outcome
                writes.append(args)
                written.append(i)
                results.append(result)
            else:
                results.append(outcome)
        if writes:
            saved = set(await conn.fetchval(BATCH_WRITE, *batch_args(writes)) or ())
            for i in written:
                if batch[i].user_id not in saved:
                    results[i] = _STALE
                    self.stale_writes += 1
        return results

    def _reward_outcome(self, row: Sequence[Any], q: _Queued, now: float) -> Any:
        """What one reward of a batch does, from its row (the step runs here)."""
        rec = rec_of(row, 1, propensity=False)  # the batch read has no propensity column
        if rec is None:
            return RewardOutcome("not_a_recommendation", None)
        if rec.user_id != q.user_id:
            return RewardOutcome("not_requester", rec)
        if rec.rewarded:
            return RewardOutcome("already_rewarded", rec)
        if row[11] is not None:  # a /simulate holds the user: this one waits, alone
            return _Held(row[11])
        read = raw_user(row, 12)
        if read is None:  # no row to check a version of: the locked path creates it
            return _MISSING
        seen_genre = read.current_genre
        try:
            reward, user, value = q.step(rec, read)
        except SkipReward as skip:
            return RewardOutcome(skip.reason, rec)
        except Exception as exc:  # a bug in the step: this reward fails, the batch goes on
            return exc
        user.updated_at = now
        args = user_args(user)[:8]
        done = replace(rec, reward=float(reward), rewarded_at=now)
        changed = user.current_genre != seen_genre
        write = (args, changed, float(reward), q.message_id, row[20])
        return RewardOutcome("applied", done, value), write

    async def _apply_one(
        self, message_id: int, user_id: int, step: RewardStep[T]
    ) -> RewardOutcome[T]:
        """One reward in its own transaction; it waits for a /simulate hold on the user."""

        async def op(conn: asyncpg.Connection) -> RewardOutcome[T]:
            row = await conn.fetchrow(REWARD_READ, message_id, user_id)
            rec = rec_of(row, propensity=False)
            if rec is None:
                return RewardOutcome("not_a_recommendation", None)
            if rec.user_id != user_id:
                return RewardOutcome("not_requester", rec)
            if rec.rewarded:
                return RewardOutcome("already_rewarded", rec)
            if row[10] is not None:  # a /simulate holds the user: wait, then apply on top
                raise _Held(row[10])
            read = raw_user(row, 11)
            seen = None if read is None else replace(read)
            try:
                reward, user, value = step(rec, read)
            except SkipReward as skip:
                return RewardOutcome(skip.reason, rec)
            now = time.time()
            user.updated_at = now
            status = await conn.execute(
                REWARD_WRITE, *user_args(user, seen), float(reward), now, message_id
            )
            if status != "UPDATE 1":  # the user's row was created meanwhile: start again
                raise _Stale
            # The reward read does not fetch the propensity: the outcome has none.
            done = replace(rec, reward=float(reward), rewarded_at=now)
            return RewardOutcome("applied", done, value)

        return await self._op(op, user_id=user_id)

    async def pending(self, max_age_s: float = 86400, limit: int = 1000) -> list[Recommendation]:
        sql = (
            f"SELECT {REC_COLS} FROM recommendations WHERE rewarded_at IS NULL "
            "AND created_at >= $1 ORDER BY created_at LIMIT $2"
        )

        async def fn(conn: asyncpg.Connection) -> list[Recommendation]:
            rows = await conn.fetch(sql, time.time() - max_age_s, limit)
            return [r for r in (rec_of(row) for row in rows) if r is not None]

        return await self._op(fn, tx=False)

    async def recommendations_of(self, user_id: int) -> list[Recommendation]:
        sql = f"SELECT {REC_COLS} FROM recommendations WHERE user_id = $1 "
        sql += "ORDER BY created_at, message_id"

        async def fn(conn: asyncpg.Connection) -> list[Recommendation]:
            rows = await conn.fetch(sql, user_id)
            return [r for r in (rec_of(row) for row in rows) if r is not None]

        return await self._op(fn, tx=False)

    async def logged_rewards(self, limit: int = 1_000_000) -> list[Recommendation]:
        sql = (
            f"SELECT {REC_COLS} FROM recommendations WHERE rewarded_at IS NOT NULL "
            "AND propensity IS NOT NULL ORDER BY created_at, message_id LIMIT $1"
        )

        async def fn(conn: asyncpg.Connection) -> list[Recommendation]:
            rows = await conn.fetch(sql, limit)
            return [r for r in (rec_of(row) for row in rows) if r is not None]

        return await self._op(fn, tx=False)

    async def guild_tallies(self, guild_id: int) -> list[RatingTally]:
        async def fn(conn: asyncpg.Connection) -> list[RatingTally]:
            rows = await conn.fetch(GUILD_TALLIES_SQL, guild_id)
            return [RatingTally(int(u), a, int(n), float(t)) for u, a, n, t in rows]

        return await self._op(fn, tx=False)

    # --------------------------------------------------------------- metadata
    async def get_meta(self, key: str) -> str | None:
        sql = "SELECT value FROM meta WHERE key = $1"
        return await self._op(lambda conn: conn.fetchval(sql, key), tx=False)

    async def set_meta(self, key: str, value: str) -> None:
        sql = (
            "INSERT INTO meta (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        await self._op(lambda conn: conn.execute(sql, key, str(value)), tx=False)

    # ------------------------------------------------- bulk copy (copy-db)
    async def export_users(self, after: int | None, limit: int) -> list[UserRecord]:
        sql = f"SELECT {USER_COLS} FROM users WHERE user_id > $1 ORDER BY user_id LIMIT $2"

        async def fn(conn: asyncpg.Connection) -> list[UserRecord]:
            rows = await conn.fetch(sql, MIN_ID if after is None else after, limit)
            return [u for u in (raw_user(row) for row in rows) if u is not None]

        return await self._op(fn, tx=False)

    async def export_recommendations(self, after: int | None, limit: int) -> list[Recommendation]:
        sql = f"SELECT {REC_COLS} FROM recommendations WHERE message_id > $1 "
        sql += "ORDER BY message_id LIMIT $2"

        async def fn(conn: asyncpg.Connection) -> list[Recommendation]:
            rows = await conn.fetch(sql, MIN_ID if after is None else after, limit)
            return [r for r in (rec_of(row) for row in rows) if r is not None]

        return await self._op(fn, tx=False)

    async def export_meta(self) -> dict[str, str]:
        rows = await self._op(lambda conn: conn.fetch("SELECT key, value FROM meta"), tx=False)
        return {row[0]: row[1] for row in rows}

    async def import_rows(
        self,
        users: Sequence[UserRecord],
        recs: Sequence[Recommendation],
        meta: dict[str, str] | None = None,
    ) -> None:
        async def fn(conn: asyncpg.Connection) -> None:
            if users:
                await conn.executemany(
                    UPSERT_USER, [(*user_args(u)[:8], True, True) for u in users]
                )
            if recs:
                await conn.executemany(UPSERT_REC, [rec_args(r) for r in recs])
            if meta:
                await conn.executemany(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    list(meta.items()),
                )

        await self._op(fn)

    async def counts(self) -> dict[str, int]:
        async def fn(conn: asyncpg.Connection) -> dict[str, int]:
            return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in COPIED_TABLES}

        return await self._op(fn, tx=False)

    async def clear(self) -> None:
        async def fn(conn: asyncpg.Connection) -> None:
            await conn.execute("TRUNCATE users, recommendations, meta, user_holds")

        await self._op(fn)
