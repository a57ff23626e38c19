"""PostgreSQL's numbered migrations, kept in step with SQLite's in ``storage/schema.py``.

Migration ``i`` (1-based) upgrades ``qtune_schema.version`` from ``i - 1`` to ``i``, and
both lists always have the same length, so one schema version number means the same
features on both backends (``copy-db`` relies on that). Append to *both* lists; never
edit a released migration. A step that SQLite needs and PostgreSQL does not (or the other
way round) is still a numbered entry on both sides, with a comment saying why.

Types: Discord ids are ``bigint`` (snowflakes stay below 2**63), times are Unix seconds
as ``double precision`` (as :class:`storage.base.Recommendation` holds them), the learner
state is the same compact blob as SQLite's (:func:`storage.schema.encode_state`).
"""

from __future__ import annotations

PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: the tables SQLite's v1 has.
    (
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
        """CREATE TABLE users (
            user_id bigint PRIMARY KEY,
            genres text[] NOT NULL,
            state bytea NOT NULL,
            epsilon double precision NOT NULL,
            current_genre text,
            rewards integer NOT NULL DEFAULT 0,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL
        )""",
        """CREATE TABLE recommendations (
            message_id bigint PRIMARY KEY,
            user_id bigint NOT NULL,
            guild_id bigint,
            channel_id bigint,
            state text NOT NULL,
            action text NOT NULL,
            epsilon double precision NOT NULL,
            created_at double precision NOT NULL,
            reward double precision,
            rewarded_at double precision
        )""",
        "CREATE INDEX recommendations_user ON recommendations (user_id)",
        # Only unrewarded rows are indexed, so the index stays tiny.
        "CREATE INDEX recommendations_pending ON recommendations (created_at) "
        "WHERE rewarded_at IS NULL",
    ),
    # v2: SQLite's v2 interned strings to shrink rows; PostgreSQL keeps plain columns
    # (TOAST and text are compact enough) and instead adds the cross-process /simulate
    # hold: a lease per user, renewed while the simulation runs, so no transaction
    # stays open for seconds and a crashed holder's lease simply expires.
    (
        """CREATE TABLE user_holds (
            user_id bigint PRIMARY KEY,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
    ),
    # v3: each suggestion's propensity, as SQLite's v3.
    ("ALTER TABLE recommendations ADD COLUMN propensity double precision",),
    # v4: the guild's rewarded rows that a newcomer's community prior reads, as SQLite's v4.
    (
        "CREATE INDEX recommendations_guild ON recommendations (guild_id) "
        "WHERE rewarded_at IS NOT NULL",
    ),
)
