"""Replies that explain themselves (issue 13 §3), through the real client and service."""

from __future__ import annotations

import re

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import SUGGESTION, THUMBS_UP, running_bot

pytestmark = pytest.mark.timeout(150)

ERIN = 340_000_000_000_000_001
FRANK = 340_000_000_000_000_002
REASON = re.compile(r"^-# (?P<why>.+)$", re.MULTILINE)


def reason_of(content: str) -> str:
    match = REASON.search(content)
    assert match, f"no reason line in {content!r}"
    return match.group("why")


async def test_nowplaying_says_why_in_words(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0"}
    async with running_bot(fake, env) as qb:
        _, first = await qb.nowplaying(ERIN, "classical")
        assert "ε" not in first.content, first.content
        assert reason_of(first.content) == "A first guess: you haven't rated any suggestion yet."
        liked = SUGGESTION.search(first.content).group("genre")
        assert await fake.user_reacts(first.id, ERIN, THUMBS_UP)
        await qb.eventually(lambda: qb.rewards(ERIN), what="the 👍")
        # The seed learner with ε ≈ 1 explores often; wait for a greedy pick of the liked genre.
        for _ in range(60):
            _, msg = await qb.nowplaying(ERIN, "classical")
            why = reason_of(msg.content)
            assert "ε" not in why
            if SUGGESTION.search(msg.content).group("genre") == liked:
                if why.startswith("You liked"):
                    assert why == f"You liked {liked} 1 of 1 time after Classical."
                    return
            else:
                assert why.startswith("Something new to try"), why
        pytest.fail(f"never a greedy pick of {liked}\n{fake.dump()}")


async def test_qtable_says_no_data_yet(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    async with running_bot(fake, bot_env):
        inter = await fake.send_command("qtable", user_id=FRANK)
        msg = await fake.final_message(inter.id, within=20)
        assert msg.ephemeral
        assert msg.content.startswith("No data yet"), msg.content
        assert not msg.attachments, "no picture of an empty table"


@pytest.mark.parametrize(
    ("learner", "episodes", "shown", "absent"),
    [
        (
            "dyna",
            10,
            ["learner settings: γ=0.9 · ", "of picks were not the greedy genre"],
            ["α", "ε", "last 100"],
        ),
        (
            "seed",
            150,
            [
                "learner settings: α=0.1 γ=0.9 ε₀=1 decay=0.995 ε_min=0.1 · ε now ",
                "(last 100 steps: ",
            ],
            ["greedy genre"],
        ),
    ],
)
async def test_simulate_shows_only_the_learners_settings(
    fake: FakeDiscord,
    bot_env: dict[str, str],
    learner: str,
    episodes: int,
    shown: list[str],
    absent: list[str],
) -> None:
    async with running_bot(fake, {**bot_env, "QTUNE_LEARNER": learner}):
        inter = await fake.send_command(
            "simulate", {"user": "pop_lover", "episodes": episodes}, user_id=FRANK
        )
        msg = await fake.final_message(inter.id, within=100)
        for text in shown:
            assert text in msg.content, msg.content
        for text in absent:
            assert text not in msg.content, msg.content
