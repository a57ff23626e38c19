"""Malformed interactions (issue 13 §5): what a buggy or hostile client may send.

Each one gets one plain ephemeral line, nothing is stored, and nothing is logged at ERROR
(no traceback). The payloads are built by hand: the fake's ``send_command`` sends only
well-formed options.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.fakediscord import FakeDiscord, Interaction
from tests.harness import running_bot

pytestmark = pytest.mark.timeout(150)

MALLORY = 350_000_000_000_000_001
NOBODY = 350_000_000_000_000_099  # a user id the payload does not resolve


def option(name: str, otype: int, value: Any) -> dict[str, Any]:
    return {"name": name, "type": otype, "value": value}


async def push(
    fake: FakeDiscord,
    name: str,
    options: list[dict[str, Any]],
    *,
    resolved: dict[str, Any] | None = None,
    dm: bool = False,
) -> Interaction:
    """An INTERACTION_CREATE for ``/name`` carrying exactly ``options``."""
    return await fake.send_raw_command(name, options, user_id=MALLORY, resolved=resolved, dm=dm)


SIMULATE_OK = option("user", 3, "pop_lover")
CASES: list[tuple[str, str, list[dict[str, Any]], str]] = [
    (
        "episodes as a word",
        "simulate",
        [SIMULATE_OK, option("episodes", 4, "ten")],
        "The episodes option must be a whole number.",
    ),
    (
        "episodes typed as text",
        "simulate",
        [SIMULATE_OK, option("episodes", 3, "10")],
        "The episodes option must be a whole number.",
    ),
    (
        "episodes as a boolean",
        "simulate",
        [SIMULATE_OK, option("episodes", 4, True)],
        "The episodes option must be a whole number.",
    ),
    (
        "episodes out of range",
        "simulate",
        [SIMULATE_OK, option("episodes", 4, 10**12)],
        "The episodes option must be between 1 and 100,000; got 1,000,000,000,000.",
    ),
    (
        "episodes missing",
        "simulate",
        [SIMULATE_OK],
        "/simulate needs the episodes option.",
    ),
    (
        "not a choice",
        "simulate",
        [option("user", 3, "../../etc/passwd"), option("episodes", 4, 10)],
        "'../../etc/passwd' is not a choice for user. Choose one of:",
    ),
    (
        "unknown option",
        "nowplaying",
        [option("genre", 3, "rock"), option("volume", 4, 11)],
        "/nowplaying has no option 'volume'.",
    ),
    (
        "option given twice",
        "nowplaying",
        [option("genre", 3, "rock"), option("genre", 3, "jazz")],
        "The genre option was given twice.",
    ),
    (
        "very long text",
        "nowplaying",
        [option("genre", 3, "rock" * 1500)],
        "The genre option is too long (6,000 characters; at most 100).",
    ),
    (
        "control characters",
        "nowplaying",
        [option("genre", 3, "ro\x00ck\x1b[2J")],
        "The genre option contains control characters.",
    ),
    (
        "genre as a number",
        "nowplaying",
        [option("genre", 4, 7)],
        "The genre option must be text.",
    ),
    (
        "public as a word",
        "qtable",
        [option("public", 5, "yes")],
        "The public option must be true or false.",
    ),
    (
        "user id not a snowflake",
        "qtable",
        [option("user", 6, "<@everyone>")],
        "The user option must be a member of this server.",
    ),
]


async def answer_of(fake: FakeDiscord, inter: Interaction) -> str:
    msg = await fake.final_message(inter.id, within=15)
    assert inter.callback_type in (4, 5), f"answered with {inter.callback_type}\n{fake.dump()}"
    assert msg.ephemeral, f"the answer must be ephemeral: {msg.content!r}"
    return msg.content


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "\n".join(f"{r.name}: {r.getMessage()}" for r in bad)


async def test_malformed_options_get_plain_answers(
    fake: FakeDiscord, bot_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bot(fake, {**bot_env, "QTUNE_COOLDOWN": "0"}) as qb:
        for what, name, options, expected in CASES:
            inter = await push(fake, name, options)
            content = await answer_of(fake, inter)
            assert content.startswith(expected), f"{what}: {content!r}"
            assert "Something went wrong" not in content, what
        # Nothing was stored for the sender: no table, no recommendation.
        assert await qb.service.storage.get_user(MALLORY) is None
        assert await qb.service.pending() == []
        # The bot still works for a well-formed command afterwards.
        _, msg = await qb.nowplaying(MALLORY, "rock")
        assert "Try **" in msg.content
    no_errors_logged(caplog)


async def test_unresolved_user_is_answered(
    fake: FakeDiscord, bot_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A /qtable user: id with no resolved member or user (AttributeError before)."""
    caplog.set_level(logging.INFO)
    fake.member_permissions[MALLORY] = str(1 << 5)  # Manage Server, so the target is read
    async with running_bot(fake, bot_env):
        for resolved in (None, {"users": {}, "members": {}}):
            inter = await push(fake, "qtable", [option("user", 6, str(NOBODY))], resolved=resolved)
            content = await answer_of(fake, inter)
            assert content.startswith("I couldn't find the user you gave for user"), content
    no_errors_logged(caplog)


async def test_guild_command_from_a_dm(
    fake: FakeDiscord, bot_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bot(fake, bot_env) as qb:
        inter = await push(fake, "nowplaying", [option("genre", 3, "rock")], dm=True)
        assert await answer_of(fake, inter) == "This command only works in a server."
        assert await qb.service.pending() == []
        # /qtable works in a DM: it is the caller's own data.
        own = await push(fake, "qtable", [], dm=True)
        assert (await answer_of(fake, own)).startswith("No data yet")
    no_errors_logged(caplog)
