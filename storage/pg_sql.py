"""The SQL of the PostgreSQL backend and its row ↔ record conversions.

Kept apart from :mod:`storage.postgres`, which holds the rules (batching, leases,
retries): each statement here is one round trip, and the comments say what makes the
subtle ones safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.base import Recommendation, UserRecord
from storage.schema import GENRE_SEP, decode_state, encode_state

GUILD_TALLIES_SQL = (  # served by the partial index recommendations_guild (migration 4)
    "SELECT user_id, action, count(*), sum(reward) FROM recommendations "
    "WHERE guild_id = $1 AND rewarded_at IS NOT NULL "
    "GROUP BY user_id, action ORDER BY user_id, action"
)

REC_COLS = "message_id, user_id, guild_id, channel_id, state, action, epsilon, created_at, "
REC_COLS += "reward, rewarded_at, propensity"
USER_COLS = "user_id, genres, state, epsilon, current_genre, rewards, created_at, updated_at"
# $9: whether this write changes the current genre. /nowplaying sets it without the
# user's lock (one statement), so a learner write that did not change it keeps the
# row's latest value instead of the one it read.
# $10: whether the row existed when read. The locked writers read it FOR UPDATE, so an
# existing row cannot change before this write; a row that was missing and exists now
# (/nowplaying created it, and an optimistic reward may have learned into it since) is
# left alone: nothing is written, and the caller starts again (storage.postgres._Stale).
UPSERT_USER = (
    f"INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (user_id) DO UPDATE SET genres = EXCLUDED.genres, state = EXCLUDED.state, "
    "epsilon = EXCLUDED.epsilon, current_genre = CASE WHEN $9::boolean "
    "THEN EXCLUDED.current_genre ELSE users.current_genre END, "
    "rewards = EXCLUDED.rewards, updated_at = EXCLUDED.updated_at WHERE $10::boolean"
)
# /nowplaying of a new member: the user row, or only its genre if another made it first.
SET_GENRE = (
    f"INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (user_id) DO UPDATE SET current_genre = EXCLUDED.current_genre, "
    f"updated_at = EXCLUDED.updated_at RETURNING {USER_COLS}"
)
UPSERT_REC = (
    f"INSERT INTO recommendations ({REC_COLS}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
    "ON CONFLICT (message_id) DO UPDATE SET user_id = EXCLUDED.user_id, "
    "guild_id = EXCLUDED.guild_id, channel_id = EXCLUDED.channel_id, state = EXCLUDED.state, "
    "action = EXCLUDED.action, epsilon = EXCLUDED.epsilon, created_at = EXCLUDED.created_at, "
    "reward = EXCLUDED.reward, rewarded_at = EXCLUDED.rewarded_at, "
    "propensity = EXCLUDED.propensity"
)
HOLDER = "SELECT holder FROM user_holds WHERE user_id = $1 AND expires_at > now()"
# Everything a reward needs in one round trip, read after the user's lock was taken;
# the user's row FOR UPDATE, so an optimistic batch cannot write it until COMMIT.
REWARD_READ = (
    "SELECT r.message_id, r.user_id, r.guild_id, r.channel_id, r.state, r.action, "
    "r.epsilon, r.created_at, r.reward, r.rewarded_at, "
    "(SELECT holder FROM user_holds WHERE user_id = $2 AND expires_at > now()), "
    "u.user_id, u.genres, u.state, u.epsilon, u.current_genre, u.rewards, u.created_at, "
    "u.updated_at FROM (SELECT 1) AS one "
    "LEFT JOIN recommendations r ON r.message_id = $1 "
    f"LEFT JOIN LATERAL (SELECT {USER_COLS} FROM users WHERE user_id = $2 FOR UPDATE) u ON true"
)
# The user's new table and the reward mark in one statement (a data-modifying CTE); the
# mark only when the table was written ($10 above).
REWARD_WRITE = (
    f"WITH saved AS ({UPSERT_USER} RETURNING 1) UPDATE recommendations SET reward = $11, "
    "rewarded_at = $12 WHERE message_id = $13 AND rewarded_at IS NULL "
    "AND EXISTS (SELECT 1 FROM saved)"
)
TOUCH_USER = "UPDATE users SET updated_at = updated_at WHERE user_id = $1"
ACQUIRE = (
    "INSERT INTO user_holds (user_id, holder, expires_at) "
    "VALUES ($1, $2, now() + $3 * interval '1 second') "
    "ON CONFLICT (user_id) DO UPDATE SET holder = EXCLUDED.holder, "
    "expires_at = EXCLUDED.expires_at WHERE user_holds.expires_at <= now() RETURNING holder"
)

# A batch's rows in one round trip, outside any transaction: the i-th reward's
# recommendation, lease and user, with the row version the write will check (xmin: the
# transaction that wrote this version of the row; every write makes a new one).
BATCH_READ = (
    "SELECT q.i, r.message_id, r.user_id, r.guild_id, r.channel_id, r.state, r.action, "
    "r.epsilon, r.created_at, r.reward, r.rewarded_at, "
    "(SELECT holder FROM user_holds h WHERE h.user_id = q.uid AND h.expires_at > now()), "
    "u.user_id, u.genres, u.state, u.epsilon, u.current_genre, u.rewards, u.created_at, "
    "u.updated_at, u.xmin::text "
    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS q(mid, uid, i) "
    "LEFT JOIN recommendations r ON r.message_id = q.mid "
    "LEFT JOIN users u ON u.user_id = q.uid"
)
# Every applied reward of a batch in one statement, its own transaction (autocommit):
# each user's new table *if its row is still the version read* (an optimistic check;
# the others are retried), then the marks of exactly the users saved. A mark cannot fail
# after its user was saved (every reward writes its user's row, so the row would be a
# newer version), but if it did, the last column's cast error rolls the whole statement
# back rather than leave a table learned from a reward that is not marked.
# Genre lists travel joined by GENRE_SEP (unnest would flatten an array of arrays).
BATCH_WRITE = (
    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], "
    "$4::float8[], $5::text[], $6::integer[], $7::float8[], $8::float8[], $9::boolean[], "
    "$10::text[], $11::bigint[], $12::float8[]) AS v(user_id, genres, state, epsilon, "
    "current_genre, rewards, created_at, updated_at, changed, seen, mid, reward)), "
    "saved AS (UPDATE users AS u SET genres = string_to_array(v.genres, E'\\x1f'), "
    "state = v.state, epsilon = v.epsilon, current_genre = CASE WHEN v.changed "
    "THEN v.current_genre ELSE u.current_genre END, rewards = v.rewards, "
    "updated_at = v.updated_at FROM v WHERE u.user_id = v.user_id AND u.xmin = v.seen::xid "
    "RETURNING u.user_id), "
    "marked AS (UPDATE recommendations AS r SET reward = v.reward, rewarded_at = v.updated_at "
    "FROM v JOIN saved ON saved.user_id = v.user_id "
    "WHERE r.message_id = v.mid AND r.rewarded_at IS NULL RETURNING r.message_id) "
    "SELECT (SELECT array_agg(user_id) FROM saved), CASE WHEN (SELECT count(*) FROM saved) "
    "<> (SELECT count(*) FROM marked) THEN CAST('qtune: a reward mark failed after its "
    "table was saved; rolled back ' || (SELECT count(*) FROM marked) AS integer) END"
)


def batch_args(writes: list[tuple[tuple[Any, ...], bool, float, int, str]]) -> list[list[Any]]:
    """Column arrays for BATCH_WRITE from (user args, genre changed, reward, message id,
    row version read)."""
    writes = sorted(writes, key=lambda w: w[0][0])  # row locks in user id order
    users = [w[0] for w in writes]
    cols: list[list[Any]] = [list(c) for c in zip(*users, strict=True)]
    cols[1] = [GENRE_SEP.join(g) for g in cols[1]]
    return [
        *cols,
        [w[1] for w in writes],
        [w[4] for w in writes],
        [w[3] for w in writes],
        [w[2] for w in writes],
    ]


BATCH_RECS = (
    f"INSERT INTO recommendations ({REC_COLS}) SELECT * FROM unnest($1::bigint[], $2::bigint[], "
    "$3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::float8[], $8::float8[], "
    "$9::float8[], $10::float8[], $11::float8[]) " + UPSERT_REC[UPSERT_REC.index("ON CONFLICT") :]
)
# ... and each user's current genre, from their latest recommendation of the batch, in
# the same statement (one commit).
BATCH_RECS_AND_GENRES = (
    f"WITH ins AS ({BATCH_RECS} RETURNING user_id, state, created_at, message_id) "
    "UPDATE users AS u SET current_genre = l.state, updated_at = $12 FROM (SELECT DISTINCT "
    "ON (user_id) user_id, state FROM ins ORDER BY user_id, created_at DESC, message_id DESC) "
    "AS l WHERE u.user_id = l.user_id"
)
BATCH_GENRE = (
    "UPDATE users AS u SET current_genre = v.genre, updated_at = v.at "
    "FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS v(user_id, genre, at) "
    "WHERE u.user_id = v.user_id RETURNING "
    + ", ".join(f"u.{c.strip()}" for c in USER_COLS.split(","))
)


def rec_of(row: Sequence[Any], at: int = 0, *, propensity: bool = True) -> Recommendation | None:
    """A recommendation from ``REC_COLS`` columns (the reward read has no propensity)."""
    if row[at] is None:
        return None
    mid, uid, guild, channel, state, action, eps, created, reward, rewarded = row[at : at + 10]
    logged = row[at + 10] if propensity else None
    return Recommendation(
        int(mid),
        int(uid),
        guild,
        channel,
        state,
        action,
        float(eps),
        float(created),
        reward,
        rewarded,
        None if logged is None else float(logged),
    )


def rec_args(rec: Recommendation) -> tuple[Any, ...]:
    return (
        rec.message_id,
        rec.user_id,
        rec.guild_id,
        rec.channel_id,
        rec.state,
        rec.action,
        float(rec.epsilon),
        float(rec.created_at),
        None if rec.reward is None else float(rec.reward),
        None if rec.rewarded_at is None else float(rec.rewarded_at),
        None if rec.propensity is None else float(rec.propensity),
    )


def raw_user(row: Sequence[Any], at: int = 0) -> UserRecord | None:
    """The stored record as stored (its own genre list), or None."""
    if row[at] is None:
        return None
    uid, genres, blob, eps, current, rewards, created, updated = row[at : at + 8]
    genres = tuple(genres)
    learner = decode_state(bytes(blob), len(genres), eps)
    return UserRecord(int(uid), genres, learner, current, int(rewards), created, updated)


def user_args(rec: UserRecord, read: UserRecord | None = None) -> tuple[Any, ...]:
    """The upsert's parameters; ``read`` is the record as read before the change (None:
    the row was missing, so the upsert must not overwrite a row made since)."""
    st = rec.learner
    genre_changed = rec.current_genre != (read.current_genre if read is not None else None)
    return (
        rec.user_id,
        list(rec.genres),
        encode_state(st),
        float(st.epsilon),
        rec.current_genre,
        int(rec.rewards),
        float(rec.created_at),
        float(rec.updated_at),
        genre_changed,
        read is not None,
    )
