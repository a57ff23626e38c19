"""Logging set-up for the bot process, with the token filter.

discord.py's own set-up (coloured on a terminal) on the root logger, once per process.
Every handler gets a :class:`TokenFilter`: defence in depth, so that no record ever
carries the token even if some code formats one into a message.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import discord

from bot.config import Settings, redact


class TokenFilter(logging.Filter):
    """Replaces the token in a record's message; formats the record only once.

    The filter has to format the message to search it, so it stores the result in the
    record (``msg`` = the text, no ``args``): the handler's formatter then reuses it
    instead of formatting it a second time.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = record.getMessage(), None
        message = record.msg if isinstance(record.msg, str) else str(record.msg)
        if self.token in message:
            record.msg = redact(message, self.token)
        return True


_configured = False


def log_formatter(stream: Any) -> Any:
    """discord.py's colour formatter only on a terminal; plain lines when piped or in a file.

    discord.py also colours whenever it detects Docker, which put escape codes into
    journald and log files. ``discord.utils.MISSING`` lets discord.py pick its colours.
    """
    is_tty = getattr(stream, "isatty", None)
    if is_tty is not None and is_tty() and "NO_COLOR" not in os.environ:
        return discord.utils.MISSING
    return logging.Formatter(
        "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
    )


def configure_logging(settings: Settings) -> None:
    """discord.py's logging set-up on the root logger (once), the level, the token filter."""
    global _configured
    if not _configured:
        discord.utils.setup_logging(
            level=settings.log_level_number, root=True, formatter=log_formatter(sys.stderr)
        )
        _configured = True
    logging.getLogger().setLevel(settings.log_level_number)
    if settings.token:
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, TokenFilter) for f in handler.filters):
                handler.addFilter(TokenFilter(settings.token))
