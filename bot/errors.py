"""Errors whose message is safe and useful to show a user as-is (one line, no traceback)."""

from __future__ import annotations


class QTuneError(ValueError):
    """An expected, user-facing error. Adapters show ``str(err)`` and nothing else."""


class UnknownGenre(QTuneError):
    """The genre given is not one of the configured genres (after aliases)."""


class InvalidRequest(QTuneError):
    """An argument out of range, an unknown simulated user, and the like."""


class Cancelled(QTuneError):
    """Long work (a simulation) stopped because the bot is shutting down; nothing was saved."""


class StorageError(Exception):
    """The database cannot be used: corrupt, newer schema, unwritable, unreachable.

    Deliberately not a :class:`QTuneError`: its text is for the operator's log, not for a
    user. When the database fails at start the CLI prints it as one line (exit 2); when it
    fails while serving, the cogs log it with its cause and answer "try again in a moment".
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class StorageUnavailable(StorageError):
    """A transient storage failure: the database is busy (a locked SQLite file) or away (a
    dropped connection, PostgreSQL restarting). The operation did not take effect, or, for
    a reward whose commit was cut off, did so exactly once: retrying is safe."""
