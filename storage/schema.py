"""Numbered schema migrations and the compact encoding of a learner state.

Migration ``i`` (1-based) upgrades ``PRAGMA user_version`` from ``i - 1`` to ``i``.
Append new ones; never edit a released one.
"""

from __future__ import annotations

import numpy as np

from bot.agent import LearnerState

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
SCHEMA_VERSION = len(MIGRATIONS)

GENRE_SEP = "\x1f"  # ASCII unit separator: cannot appear in a sensible genre name


def encode_state(st: LearnerState) -> bytes:
    """q, reward_sum and visits as one blob, dropping all-zero trailing parts."""
    parts = [
        np.ascontiguousarray(st.q, dtype="<f8").tobytes(),
        np.ascontiguousarray(st.reward_sum, dtype="<f8").tobytes(),
        np.ascontiguousarray(st.visits, dtype="<u4").tobytes(),
    ]
    if not st.visits.any() and not st.reward_sum.any():
        parts = parts[:1] if st.q.any() else []
    return b"".join(parts)


def decode_state(blob: bytes, n: int, epsilon: float) -> LearnerState:
    """Inverse of :func:`encode_state` for an ``n``-genre table."""
    cells = n * n
    q = np.zeros((n, n))
    reward_sum = np.zeros((n, n))
    visits = np.zeros((n, n), dtype=np.int64)
    if len(blob) not in (0, 8 * cells, 20 * cells):
        raise ValueError(f"state blob of {len(blob)} bytes does not fit {n} genres")
    if blob:
        q[:] = np.frombuffer(blob, "<f8", cells, 0).reshape(n, n)
    if len(blob) == 20 * cells:
        reward_sum[:] = np.frombuffer(blob, "<f8", cells, 8 * cells).reshape(n, n)
        visits[:] = np.frombuffer(blob, "<u4", cells, 16 * cells).reshape(n, n)
    return LearnerState(q, float(epsilon), visits, reward_sum)
