"""The error policy: expected errors ephemeral in plain words, the rest logged in full."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from discord import app_commands

from bot.config import Settings, open_service
from bot.errors import InvalidRequest, QTuneError, StorageError, UnknownGenre
from cogs.common import DATABASE_DOWN, SOMETHING_WRONG, error_message, report_error
from tests.cogs.fakes import FakeInteraction


def invoke_error(exc: Exception) -> app_commands.CommandInvokeError:
    command = SimpleNamespace(name="nowplaying", qualified_name="nowplaying")
    err = app_commands.CommandInvokeError(command, exc)
    err.__cause__ = exc
    return err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (invoke_error(UnknownGenre("Unknown genre 'polka'.")), "Unknown genre 'polka'."),
        (InvalidRequest("episodes must be between 1 and 10"), "episodes must be between 1"),
        (
            app_commands.CommandOnCooldown(app_commands.Cooldown(1, 3), 2.2),
            "Try again in 3 s",
        ),
        (app_commands.MissingPermissions(["manage_guild"]), "Manage Server"),
        (app_commands.NoPrivateMessage(), "only works in a server"),
        (app_commands.CheckFailure(), "can't use this command"),
    ],
)
def test_expected_errors_have_plain_words(error, expected):
    message = error_message(error)
    assert message is not None
    assert expected in message
    assert "\n" not in message


def test_unexpected_errors_have_no_words():
    assert error_message(invoke_error(KeyError("boom"))) is None
    assert error_message(RuntimeError("x")) is None


async def test_expected_error_is_answered_ephemerally(fake_bot):
    inter = FakeInteraction(fake_bot)
    await report_error(inter, invoke_error(UnknownGenre("Unknown genre 'x'.")))
    assert fake_bot.events == [("send_message", "Unknown genre 'x'.", {"ephemeral": True})]


async def test_unexpected_error_is_logged_with_traceback(fake_bot, caplog):
    try:
        raise ZeroDivisionError("oops")
    except ZeroDivisionError as exc:
        error = invoke_error(exc)
    inter = FakeInteraction(fake_bot)
    await report_error(inter, error)
    assert fake_bot.events == [("send_message", SOMETHING_WRONG, {"ephemeral": True})]
    records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info[0] is ZeroDivisionError
    assert "/nowplaying" in records[0].getMessage()


async def test_error_after_answer_goes_to_a_followup(fake_bot):
    inter = FakeInteraction(fake_bot)
    await inter.response.defer(ephemeral=True)
    await report_error(inter, InvalidRequest("nope"))
    assert fake_bot.events[-1] == ("followup", "nope", {"ephemeral": True})


async def real_storage_failure(tmp_path: Path) -> StorageError:
    """The error a real SQLite storage raises when it fails while serving."""
    service, storage = await open_service(Settings(db_path=tmp_path / "q.db"), cpu=False)
    await storage.close()  # the database goes away under a running bot
    try:
        await service.table(42)
    except StorageError as exc:
        return exc
    raise AssertionError("a closed storage answered")


def test_a_storage_error_is_not_shown_to_users_as_is():
    assert not issubclass(StorageError, QTuneError)
    message = error_message(invoke_error(StorageError("database error: disk I/O error")))
    assert message == DATABASE_DOWN
    assert "disk I/O" not in message


async def test_a_runtime_storage_failure_is_a_warning_and_try_again(fake_bot, caplog, tmp_path):
    failure = await real_storage_failure(tmp_path)
    inter = FakeInteraction(fake_bot, command="qtable")
    await report_error(inter, invoke_error(failure))
    assert fake_bot.events == [("send_message", DATABASE_DOWN, {"ephemeral": True})]
    assert "try again in a moment" in DATABASE_DOWN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].exc_info is not None
    assert warnings[0].exc_info[1] is failure  # logged with its cause
    assert str(failure) in warnings[0].getMessage()
    assert "/qtable" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
