"""Scenarios 2-4: the full /nowplaying → reaction → TD-update loop, in-process.

The seed's defaults: α = 0.1, γ = 0.9, ε₀ = 1.0 decaying ×0.995 per reward, like = +10.
A 👍 on a fresh table therefore sets Q[Rock][suggested] = 0.1 · (10 + 0.9 · 0 − 0) = 1.0.
"""

from __future__ import annotations

import discord
import numpy as np
import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import GENRES, THUMBS_DOWN, THUMBS_UP, running_bot, suggested

pytestmark = pytest.mark.timeout(45)

ALICE = 310_000_000_000_000_001
BOB = 310_000_000_000_000_002
OTHER_BOT = 310_000_000_000_000_003


async def test_full_loop(fake: FakeDiscord, bot_env: dict[str, str], debug_logs) -> None:
    async with running_bot(fake, bot_env) as qb:
        inter, msg = await qb.nowplaying(ALICE, "rock")
        assert inter.callback_type == 4, fake.dump()
        assert not msg.ephemeral, "the recommendation must be public"
        action = suggested(msg.content)
        assert action in GENRES
        assert "Rock" in msg.content
        # The bot reacted 👍 then 👎 on exactly that message, and nowhere else.
        assert fake.reactions_of(msg.id) == {
            THUMBS_UP: [fake.bot_user_id],
            THUMBS_DOWN: [fake.bot_user_id],
        }
        before = await qb.service.table(ALICE)
        assert before.rewards == 0
        assert before.current_genre == "Rock"
        assert np.all(before.q == 0.0)
        assert before.epsilon == pytest.approx(1.0)

        assert await fake.user_reacts(msg.id, ALICE, THUMBS_UP)
        after = await qb.eventually(lambda: _table_with_rewards(qb, ALICE, 1), what="the 👍 reward")
        genres = list(after.genres)
        expected = np.zeros_like(after.q)
        expected[genres.index("Rock"), genres.index(action)] = 1.0
        np.testing.assert_allclose(after.q, expected, atol=1e-12)
        assert after.epsilon == pytest.approx(0.995)
        assert after.current_genre == action  # on 👍 the suggestion becomes the current genre
    assert fake.token not in debug_logs.text


async def _table_with_rewards(qb, user_id: int, n: int):
    view = await qb.service.table(user_id)
    return view if view.rewards >= n else None


def ignored_lines(caplog, message_id: int) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name.startswith("qtune")
        and "ignored" in r.getMessage()
        and str(message_id) in r.getMessage()
    )


async def test_ignored_reactions(fake: FakeDiscord, bot_env: dict[str, str], debug_logs) -> None:
    fake.add_user(OTHER_BOT, "another-bot", bot=True)
    async with running_bot(fake, bot_env) as qb:
        reached: list[int] = []  # who reacted, for every event that reached a listener

        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            reached.append(payload.user_id)

        qb.bot.add_listener(on_raw_reaction_add)
        _, msg = await qb.nowplaying(ALICE, "rock")
        fresh = await qb.service.table(ALICE)

        seen = ignored_lines(debug_logs, msg.id)
        # The bot itself, once more (as Discord would echo it), then three others.
        await fake.dispatch_reaction(msg.id, fake.bot_user_id, THUMBS_UP)
        events = [
            (BOB, THUMBS_UP),  # another user
            (OTHER_BOT, THUMBS_UP),  # another bot
            (ALICE, "\N{GUITAR}"),  # the requester, a different emoji
        ]
        for user, emoji in events:
            assert await fake.user_reacts(msg.id, user, emoji)
        await qb.eventually(
            lambda: _ge(ignored_lines(debug_logs, msg.id), seen + 3),
            what="three more ignored reactions",
        )
        # Discord echoed the bot's own 👍 and 👎 (and the 👍 again): the gateway handles
        # events in order, so by now each echo was dropped before any listener saw it.
        assert reached == [BOB, OTHER_BOT, ALICE], reached
        unchanged = await qb.service.table(ALICE)
        np.testing.assert_array_equal(unchanged.q, fresh.q)
        assert unchanged.rewards == 0
        assert unchanged.epsilon == fresh.epsilon
        assert await qb.rewards(BOB) == 0

        # The requester's first 👍 counts; a second reaction (👎) does not.
        assert await fake.user_reacts(msg.id, ALICE, THUMBS_UP)
        first = await qb.eventually(lambda: _table_with_rewards(qb, ALICE, 1))
        seen = ignored_lines(debug_logs, msg.id)
        assert await fake.user_reacts(msg.id, ALICE, THUMBS_DOWN)
        await qb.eventually(
            lambda: _ge(ignored_lines(debug_logs, msg.id), seen + 1),
            what="the second reaction ignored",
        )
        second = await qb.service.table(ALICE)
        np.testing.assert_array_equal(second.q, first.q)
        assert second.rewards == 1
        assert second.epsilon == first.epsilon
    assert fake.token not in debug_logs.text


async def _ge(value: int, n: int) -> bool:
    return value >= n


async def test_unknown_genre(fake: FakeDiscord, bot_env: dict[str, str], debug_logs) -> None:
    async with running_bot(fake, bot_env) as qb:
        inter = await fake.send_command("nowplaying", {"genre": "polka"}, user_id=ALICE)
        await fake.interaction_response(inter.id)
        assert inter.callback_type == 4, fake.dump()
        data = inter.callback_data
        assert data.get("flags", 0) & 64, f"not ephemeral: {data}"
        for genre in GENRES:
            assert genre in data["content"], f"the error should list {genre}: {data['content']!r}"
        # A normal command afterwards is a barrier: everything before it has been handled.
        await qb.nowplaying(BOB, "jazz")
        assert not any(
            f"/messages/{inter.original_message_id}/" in r.path for r in fake.requests
        ), "reactions were added to the error message"
        assert all(rec.user_id != ALICE for rec in await qb.service.pending())
        view = await qb.service.table(ALICE)
        assert view.rewards == 0
        assert view.current_genre is None
        assert np.all(view.q == 0.0)


def button_id(message, label: str) -> str:
    for row in message.components:
        for component in row.get("components", []):
            if component.get("label") == label:
                return component["custom_id"]
    raise AssertionError(f"no button {label!r} in {message.components}")


async def test_reset_with_the_confirmation_button(
    fake: FakeDiscord, bot_env: dict[str, str]
) -> None:
    async with running_bot(fake, bot_env) as qb:
        _, msg = await qb.nowplaying(ALICE, "rock")
        assert await fake.user_reacts(msg.id, ALICE, THUMBS_UP)
        await qb.eventually(lambda: _table_with_rewards(qb, ALICE, 1))

        inter = await fake.send_command("reset", user_id=ALICE)
        await fake.interaction_response(inter.id)
        prompt = fake.original_message(inter.id)
        assert prompt.ephemeral
        # Somebody else cannot press it.
        intruder = await fake.press_button(
            prompt.id, button_id(prompt, "Delete my data"), user_id=BOB
        )
        await fake.interaction_response(intruder.id)
        assert intruder.callback_data.get("flags", 0) & 64
        assert (await qb.service.table(ALICE)).rewards == 1

        click = await fake.press_button(
            prompt.id, button_id(prompt, "Delete my data"), user_id=ALICE
        )
        await fake.interaction_response(click.id)
        assert click.callback_type == 7, fake.dump()
        assert "deleted" in prompt.content.lower()
        assert prompt.components == []
        view = await qb.service.table(ALICE)
        assert view.rewards == 0
        assert np.all(view.q == 0.0)


async def test_gateway_resume_keeps_learning(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    """Discord drops the websocket (close 4000): the bot resumes and still takes rewards."""
    async with running_bot(fake, bot_env) as qb:
        _, msg = await qb.nowplaying(ALICE, "classical")
        await fake.disconnect_gateway(4000)
        await fake.wait_until(
            lambda: sum(s.identified for s in fake.sessions) >= 2 and fake.active_session(),
            what="the bot to resume",
        )
        assert "RESUMED" in "\n".join(fake.log)
        assert await fake.user_reacts(msg.id, ALICE, THUMBS_DOWN)
        view = await qb.eventually(lambda: _table_with_rewards(qb, ALICE, 1))
        order = list(view.genres)
        assert view.q[order.index("Classical")].sum() == pytest.approx(-0.5)  # 0.1 * (-5)
