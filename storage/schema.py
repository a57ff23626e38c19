"""Numbered schema migrations and the compact encoding of a learner state.

Migration ``i`` (1-based) upgrades ``PRAGMA user_version`` from ``i - 1`` to ``i``.
Append new ones; never edit a released one.
"""

from __future__ import annotations

import zlib

import numpy as np

from bot.engine.qlearning import MEMORY_PLANES, LearnerState

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Key/value metadata, e.g. the hash of the last synced command definitions.
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        # Genre lists are shared by almost every user: store each list once.
        "CREATE TABLE genre_sets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)",
        # state: q (f8) | reward_sum (f8) | visits (u4), little-endian, n×n each; trailing
        # all-zero parts are left out (see encode_state). Times are Unix milliseconds.
        """CREATE TABLE users (
            user_id INTEGER PRIMARY KEY,
            genre_set INTEGER NOT NULL REFERENCES genre_sets(id),
            state BLOB NOT NULL,
            epsilon REAL NOT NULL,
            current_genre TEXT,
            rewards INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        )""",
        # Keyed by the Discord message id (the rowid: no separate key index).
        """CREATE TABLE recommendations (
            message_id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL,
            guild_id INTEGER,
            channel_id INTEGER,
            state TEXT NOT NULL,
            action TEXT NOT NULL,
            epsilon REAL NOT NULL,
            created_at INTEGER NOT NULL,
            reward REAL,
            rewarded_at INTEGER
        )""",
        "CREATE INDEX recommendations_user ON recommendations(user_id)",
        # Only unrewarded rows are indexed, so the index stays tiny.
        "CREATE INDEX recommendations_pending ON recommendations(created_at) "
        "WHERE rewarded_at IS NULL",
    ),
)
# v2: smaller recommendation rows (~2 KiB per user with 20 of them). Genre names and
# (guild, channel) pairs are interned in `lookup` ("g:Rock", "p:guild/channel"; an empty
# side is NULL), and recommendation times are whole seconds instead of milliseconds.
_PLACE = "'p:' || ifnull(guild_id, '') || '/' || ifnull(channel_id, '')"
MIGRATIONS += (
    (
        "CREATE TABLE lookup (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)",
        "INSERT OR IGNORE INTO lookup(value) SELECT 'g:' || state FROM recommendations "
        "UNION SELECT 'g:' || action FROM recommendations "
        f"UNION SELECT {_PLACE} FROM recommendations",
        """CREATE TABLE recommendations_v2 (
            message_id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL,
            place INTEGER NOT NULL REFERENCES lookup(id),
            state INTEGER NOT NULL REFERENCES lookup(id),
            action INTEGER NOT NULL REFERENCES lookup(id),
            epsilon REAL NOT NULL,
            created_at INTEGER NOT NULL,
            reward REAL,
            rewarded_at INTEGER
        )""",
        "INSERT INTO recommendations_v2 SELECT message_id, user_id, "
        f"(SELECT id FROM lookup WHERE value = {_PLACE}), "
        "(SELECT id FROM lookup WHERE value = 'g:' || state), "
        "(SELECT id FROM lookup WHERE value = 'g:' || action), "
        "epsilon, created_at / 1000, reward, rewarded_at / 1000 FROM recommendations",
        "DROP TABLE recommendations",
        "ALTER TABLE recommendations_v2 RENAME TO recommendations",
        "CREATE INDEX recommendations_user ON recommendations(user_id)",
        "CREATE INDEX recommendations_pending ON recommendations(created_at) "
        "WHERE rewarded_at IS NULL",
    ),
)
# v3: the probability with which the learner chose each suggestion (its propensity), for
# offline evaluation; NULL for rows written before.
MIGRATIONS += (("ALTER TABLE recommendations ADD COLUMN propensity REAL",),)
# v4: a newcomer's first table reads their guild's rewarded rows (the community prior);
# without an index that read scanned every recommendation of every guild.
MIGRATIONS += (
    ("CREATE INDEX recommendations_place ON recommendations(place) WHERE rewarded_at IS NOT NULL",),
)
SCHEMA_VERSION = len(MIGRATIONS)

GENRE_SEP = "\x1f"  # ASCII unit separator: cannot appear in a sensible genre name


def _raw_lengths(cells: int) -> tuple[int, ...]:
    """The byte lengths a raw blob can have: nothing, q, q+counts, q+counts+memory."""
    return (0, 8 * cells, 20 * cells, (20 + 8 * MEMORY_PLANES) * cells)


def encode_state(st: LearnerState) -> bytes:
    """q, reward_sum, visits and the learner's memory (if any) as one blob, dropping
    all-zero trailing parts.

    Zlib-compressed when that is smaller (sparse tables of new users shrink a lot);
    a raw blob has one of :func:`_raw_lengths`, so the two cannot be confused. Blobs
    written before ``memory`` existed (0, 8n² or 20n² bytes) decode unchanged.
    """
    raw = _raw_state(st)
    packed = zlib.compress(raw, 6)
    if len(packed) < len(raw) and len(packed) not in _raw_lengths(st.q.size):
        return packed
    return raw


def _raw_state(st: LearnerState) -> bytes:
    parts = [
        np.ascontiguousarray(st.q, dtype="<f8").tobytes(),
        np.ascontiguousarray(st.reward_sum, dtype="<f8").tobytes(),
        np.ascontiguousarray(st.visits, dtype="<u4").tobytes(),
    ]
    if st.memory is not None:
        n = st.q.shape[0]
        memory = np.broadcast_to(st.memory, (MEMORY_PLANES, n, n))
        return b"".join([*parts, np.ascontiguousarray(memory, dtype="<f8").tobytes()])
    if not st.visits.any() and not st.reward_sum.any():
        parts = parts[:1] if st.q.any() else []
    return b"".join(parts)


def decode_state(blob: bytes, n: int, epsilon: float) -> LearnerState:
    """Inverse of :func:`encode_state` for an ``n``-genre table."""
    cells = n * n
    lengths = _raw_lengths(cells)
    if len(blob) not in lengths:
        blob = zlib.decompress(blob)
    q = np.zeros((n, n))
    reward_sum = np.zeros((n, n))
    visits = np.zeros((n, n), dtype=np.int64)
    memory = None
    if len(blob) not in lengths:
        raise ValueError(f"state blob of {len(blob)} bytes does not fit {n} genres")
    if blob:
        q[:] = np.frombuffer(blob, "<f8", cells, 0).reshape(n, n)
    if len(blob) >= 20 * cells:
        reward_sum[:] = np.frombuffer(blob, "<f8", cells, 8 * cells).reshape(n, n)
        visits[:] = np.frombuffer(blob, "<u4", cells, 16 * cells).reshape(n, n)
    if len(blob) == lengths[3]:
        planes = MEMORY_PLANES * cells
        memory = np.frombuffer(blob, "<f8", planes, 20 * cells).reshape(MEMORY_PLANES, n, n).copy()
    return LearnerState(q, float(epsilon), visits, reward_sum, memory)
