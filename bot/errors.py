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
