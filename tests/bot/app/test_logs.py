"""The token filter: no record carries the token, and each record is formatted once."""

from __future__ import annotations

import io
import logging

from bot.app.logs import TokenFilter

TOKEN = "MTIz.abcdef.ghijk"


class Counted:
    """An argument that counts how often it is formatted."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.formatted = 0

    def __str__(self) -> str:
        self.formatted += 1
        return self.text


def test_token_filter_redacts_log_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token is %s", (TOKEN,), None)
    assert TokenFilter(TOKEN).filter(record)
    assert TOKEN not in record.getMessage()
    assert "[redacted]" in record.getMessage()


def test_a_record_is_formatted_once_through_filter_and_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(TokenFilter(TOKEN))
    logger = logging.getLogger("qtune.test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        arg = Counted("hello")
        logger.warning("said %s with %s", arg, TOKEN)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert arg.formatted == 1
    assert stream.getvalue() == "WARNING said hello with [redacted]\n"


def test_a_record_without_arguments_is_left_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "100% done", None, None)
    assert TokenFilter(TOKEN).filter(record)
    assert record.getMessage() == "100% done"
