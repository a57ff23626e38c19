"""The tree's global check on raw interaction data (cogs/checks.py), on the real commands."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.errors import InvalidRequest
from cogs.checks import BadOptions, check_interaction, check_options
from cogs.common import error_message
from cogs.recommend import Recommend
from cogs.simulate import Simulate, whole_episodes
from cogs.table import Table

SIMULATE = Simulate.simulate
NOWPLAYING = Recommend.nowplaying
QTABLE = Table.qtable


def data(*options: dict[str, Any], resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "x", "type": 1, "options": list(options)}
    if resolved is not None:
        out["resolved"] = resolved
    return out


def opt(name: str, otype: int, value: Any) -> dict[str, Any]:
    return {"name": name, "type": otype, "value": value}


def test_well_formed_options_pass() -> None:
    check_options(SIMULATE, data(opt("user", 3, "pop_lover"), opt("episodes", 4, 100)))
    check_options(NOWPLAYING, data(opt("genre", 3, "hip hop")))
    check_options(QTABLE, data())
    uid = "123456789012345678"
    check_options(QTABLE, data(opt("user", 6, uid), resolved={"users": {uid: {"id": uid}}}))


@pytest.mark.parametrize(
    ("command", "payload", "message"),
    [
        (SIMULATE, data(opt("user", 3, "generic"), opt("episodes", 4, "ten")), "whole number"),
        (SIMULATE, data(opt("user", 3, "generic"), opt("episodes", 4, 2.5)), "whole number"),
        (SIMULATE, data(opt("user", 3, "generic"), opt("episodes", 4, 0)), "between 1 and"),
        (SIMULATE, data(opt("user", 3, "generic")), "needs the episodes option"),
        (SIMULATE, data(opt("user", 3, "nobody"), opt("episodes", 4, 5)), "not a choice"),
        (NOWPLAYING, data(opt("genre", 3, "x" * 101)), "too long (101 characters"),
        (NOWPLAYING, data(opt("genre", 3, "rock\n")), "control characters"),
        (NOWPLAYING, data(opt("genre", 3, None)), "must be text"),
        (NOWPLAYING, data({"name": "genre", "type": 3}), "must be text"),
        (NOWPLAYING, data("genre"), "malformed options"),
        (QTABLE, data(opt("user", 6, "42")), "couldn't find the user"),
        (QTABLE, data(opt("user", 6, "-1")), "must be a member"),
        (QTABLE, data(opt("public", 5, 1)), "true or false"),
        (QTABLE, data(opt("user", 6, "42"), resolved=[]), "malformed data"),
    ],
)
def test_malformed_options_say_what_is_wrong(command, payload, message: str) -> None:
    with pytest.raises(BadOptions) as info:
        check_options(command, payload)
    text = error_message(info.value)
    assert text is not None
    assert message in text
    assert "\n" not in text


def test_bad_options_read_as_a_check_failure_with_its_own_words() -> None:
    err = BadOptions("The genre option is too long.")
    assert isinstance(err, app_commands.AppCommandError)  # the tree's error path
    assert error_message(err) == "The genre option is too long."


def test_guild_only_command_from_a_dm() -> None:
    interaction = SimpleNamespace(
        type=discord.InteractionType.application_command,
        data=data(opt("genre", 3, "rock")),
        command=NOWPLAYING,
        guild_id=None,
    )
    with pytest.raises(app_commands.NoPrivateMessage):
        check_interaction(interaction)  # type: ignore[arg-type]
    interaction.guild_id = 7
    assert check_interaction(interaction) is True  # type: ignore[arg-type]


def test_autocomplete_is_let_through() -> None:
    interaction = SimpleNamespace(
        type=discord.InteractionType.autocomplete,
        data=data(opt("genre", 3, "\x00" * 500)),
        command=NOWPLAYING,
        guild_id=None,
    )
    assert check_interaction(interaction) is True  # type: ignore[arg-type]


@pytest.mark.parametrize("episodes", ["ten", True, 2.0])
def test_simulate_refuses_non_integer_episodes(episodes: Any) -> None:
    with pytest.raises(InvalidRequest, match="whole number"):
        whole_episodes(episodes)
