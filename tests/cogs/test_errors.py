"""The error policy: expected errors ephemeral in plain words, the rest logged in full."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from discord import app_commands

from bot.errors import InvalidRequest, UnknownGenre
from cogs.common import SOMETHING_WRONG, error_message, report_error
from tests.cogs.conftest import FakeInteraction


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


async def test_expected_error_is_answered_ephemerally(fake_bot, service):
    inter = FakeInteraction(fake_bot)
    await report_error(inter, invoke_error(UnknownGenre("Unknown genre 'x'.")))
    assert service.events == [("send_message", "Unknown genre 'x'.", {"ephemeral": True})]


async def test_unexpected_error_is_logged_with_traceback(fake_bot, service, caplog):
    try:
        raise ZeroDivisionError("oops")
    except ZeroDivisionError as exc:
        error = invoke_error(exc)
    inter = FakeInteraction(fake_bot)
    await report_error(inter, error)
    assert service.events == [("send_message", SOMETHING_WRONG, {"ephemeral": True})]
    records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info[0] is ZeroDivisionError
    assert "/nowplaying" in records[0].getMessage()


async def test_error_after_answer_goes_to_a_followup(fake_bot, service):
    inter = FakeInteraction(fake_bot)
    await inter.response.defer(ephemeral=True)
    await report_error(inter, InvalidRequest("nope"))
    assert service.events[-1] == ("followup", "nope", {"ephemeral": True})
