"""The reactions cog: live 👍/👎 and the catch-up of reactions given while the bot was away.

The listener runs on the real service over the in-memory storage, with narrow Discord fakes;
the catch-up runs on the real service over a real SQLite file, with only Discord's
reaction-users endpoint faked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.app.bot import QTuneBot
from bot.config import Settings, open_service
from bot.errors import StorageError
from bot.service import FeedbackResult, QTuneService
from cogs.common import THUMBS_DOWN, THUMBS_UP
from cogs.reactions import CATCH_UP_MAX_AGE, Reactions


def reaction(emoji: str, user_id: int = 42, message_id: int = 1234, **extra):
    data = {
        "user_id": user_id,
        "message_id": message_id,
        "channel_id": 8,
        "guild_id": 7,
        "emoji": {"name": emoji, "id": None},
        "type": 0,
        **extra,
    }
    return discord.RawReactionActionEvent(data, discord.PartialEmoji(name=emoji), "REACTION_ADD")


async def suggested(service: QTuneService, message_id: int = 1234, user_id: int = 42) -> None:
    """/nowplaying's part: a recommendation posted as ``message_id`` for ``user_id``."""
    await service.record(message_id, await service.recommend(user_id, "Rock"), 7, 8)


def spy_on_feedback(service: QTuneService, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record the calls to the real ``service.feedback`` (which still runs)."""
    calls: list[tuple] = []
    real = service.feedback

    async def feedback(message_id: int, user_id: int, liked: bool) -> FeedbackResult:
        calls.append((message_id, user_id, liked))
        return await real(message_id, user_id, liked)

    monkeypatch.setattr(service, "feedback", feedback)
    return calls


@pytest.mark.parametrize(("emoji", "liked"), [(THUMBS_UP, True), (THUMBS_DOWN, False)])
async def test_thumbs_become_feedback(fake_bot, service, emoji, liked):
    await suggested(service)
    cog = Reactions(fake_bot)
    await cog.on_raw_reaction_add(reaction(emoji, message_author_id=999))
    table = await service.table(42)
    assert table.rewards == 1
    assert (table.q.max() > 0) if liked else (table.q.min() < 0)
    assert await service.pending() == []  # the recommendation is rewarded
    assert fake_bot.in_flight.count == 0


async def test_ignored_reactions_never_reach_the_service(fake_bot, service, caplog, monkeypatch):
    await suggested(service)
    calls = spy_on_feedback(service, monkeypatch)
    cog = Reactions(fake_bot)
    caplog.set_level(logging.DEBUG, logger="qtune")
    await cog.on_raw_reaction_add(reaction(THUMBS_UP, user_id=999))  # the bot's own echo
    await cog.on_raw_reaction_add(reaction("🎉"))  # other emoji
    await cog.on_raw_reaction_add(reaction(THUMBS_UP, message_author_id=555))  # not our message
    bot_member = reaction(THUMBS_UP, user_id=77)
    bot_member.member = SimpleNamespace(bot=True)
    await cog.on_raw_reaction_add(bot_member)
    assert calls == []
    assert len(await service.pending()) == 1  # still waiting for the requester
    ignored = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 4
    assert all(r.levelno == logging.DEBUG for r in ignored)


async def test_rejected_feedback_is_a_debug_line(fake_bot, service, caplog):
    await suggested(service)
    cog = Reactions(fake_bot)
    caplog.set_level(logging.DEBUG, logger="qtune")
    await cog.on_raw_reaction_add(reaction(THUMBS_UP, user_id=5))  # not the requester
    assert any("not_requester" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert (await service.table(42)).rewards == 0


async def test_feedback_failure_is_logged_not_raised(fake_bot, service, caplog, monkeypatch):
    async def broken(*args: object) -> FeedbackResult:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(service, "feedback", broken)
    cog = Reactions(fake_bot)
    await cog.on_raw_reaction_add(reaction(THUMBS_UP))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None


# ------------------------------------------------------------------ catch-up
class ReactionUsers:
    """Discord's ``GET .../reactions/{emoji}``: who reacted, 100 per page, by id."""

    def __init__(
        self, reactions: dict[tuple[int, str], list[int]], missing: frozenset[int]
    ) -> None:
        self.reactions = reactions
        self.missing = missing
        self.calls: list[tuple[int, int, str, int | None]] = []

    async def __call__(
        self, channel_id: int, message_id: int, emoji: str, limit: int, after: int | None = None
    ) -> list[dict[str, str]]:
        self.calls.append((channel_id, message_id, emoji, after))
        if message_id in self.missing:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")
        users = sorted(self.reactions.get((message_id, emoji), []))
        if after is not None:
            users = [u for u in users if u > after]
        return [{"id": str(u)} for u in users[:limit]]


@pytest.fixture
async def real_service(tmp_path: Path) -> AsyncIterator[QTuneService]:
    service, storage = await open_service(
        Settings(db_path=tmp_path / "q.db", learner="seed"), cpu=False
    )
    yield service
    await storage.close()


async def posted(service: QTuneService, message_id: int, user_id: int, channel: int | None = 8):
    suggestion = await service.recommend(user_id, "Rock")
    await service.record(message_id, suggestion, 7 if channel else None, channel)


def catching_up(
    service: QTuneService,
    reactions: dict[tuple[int, str], list[int]],
    missing: frozenset[int] = frozenset(),
) -> tuple[Reactions, ReactionUsers, QTuneBot]:
    bot = QTuneBot(Settings(), service=service)
    users = ReactionUsers(reactions, missing)
    bot.http.get_reaction_users = users  # type: ignore[method-assign]
    return Reactions(bot), users, bot


async def rewards(service: QTuneService, user_id: int) -> int:
    return (await service.table(user_id)).rewards


async def test_catch_up_applies_the_requesters_reaction_only(real_service: QTuneService) -> None:
    for message_id, user in [(1, 42), (2, 43), (3, 44), (4, 45)]:
        await posted(real_service, message_id, user)
    await posted(real_service, 5, 46, channel=None)  # a console recommendation
    cog, users, bot = catching_up(
        real_service,
        {
            (1, THUMBS_UP): [999, 42],  # 👍 by the requester (and the bot)
            (1, THUMBS_DOWN): [999],
            (2, THUMBS_UP): [999],
            (2, THUMBS_DOWN): [999, 43],  # 👎 by the requester
            (3, THUMBS_UP): [999, 7],  # only someone else reacted
        },
        missing=frozenset({4}),  # the message was deleted
    )
    assert await cog.catch_up() == 2
    assert cog.caught_up.is_set()
    assert [await rewards(real_service, u) for u in (42, 43, 44, 45, 46)] == [1, 1, 0, 0, 0]
    table = await real_service.table(43)
    assert table.q.min() < 0  # the 👎 was a dislike
    assert not any(c[1] == 5 for c in users.calls)  # nothing to read for the console
    assert len(await real_service.pending(CATCH_UP_MAX_AGE)) == 3
    assert await cog.catch_up() == 0  # a second READY applies nothing twice
    await bot.close()


async def test_catch_up_reads_every_page_of_reaction_users(real_service: QTuneService) -> None:
    await posted(real_service, 6, 500)
    cog, users, bot = catching_up(real_service, {(6, THUMBS_UP): [*range(100, 200), 500]})
    assert await cog.catch_up() == 1
    assert [c[3] for c in users.calls] == [None, 199]
    assert await rewards(real_service, 500) == 1
    await bot.close()


async def test_catch_up_runs_on_every_ready(real_service: QTuneService) -> None:
    """A new gateway session (READY) may follow missed events: each one catches up."""
    await posted(real_service, 1, 42)
    await posted(real_service, 2, 43)
    reactions = {(1, THUMBS_UP): [42]}
    cog, _, bot = catching_up(real_service, reactions)
    await cog.on_ready()
    await cog.caught_up.wait()
    assert [await rewards(real_service, u) for u in (42, 43)] == [1, 0]
    reactions[(2, THUMBS_DOWN)] = [43]  # given while the gateway was reconnecting
    await cog.on_ready()
    await asyncio.gather(*bot._tasks)
    assert [await rewards(real_service, u) for u in (42, 43)] == [1, 1]
    await bot.close()


async def test_catch_up_survives_a_failing_discord(real_service: QTuneService, caplog: Any) -> None:
    await posted(real_service, 1, 42)
    await posted(real_service, 2, 43)
    cog, _, bot = catching_up(real_service, {(2, THUMBS_UP): [43]})

    async def flaky(channel_id: int, message_id: int, *args: Any, **kwargs: Any) -> Any:
        if message_id == 1:
            raise discord.HTTPException(SimpleNamespace(status=500, reason="oops"), "down")
        return [{"id": "43"}]

    bot.http.get_reaction_users = flaky  # type: ignore[method-assign]
    assert await cog.catch_up() == 1
    assert any(r.levelno == logging.WARNING and "1" in r.getMessage() for r in caplog.records)
    await bot.close()


async def test_a_database_failure_on_a_reaction_is_a_warning_with_its_cause(
    fake_bot, real_service: QTuneService, caplog: Any
) -> None:
    fake_bot.service = real_service
    await posted(real_service, 1234, 42)
    await real_service.storage.close()  # the database fails under the running bot
    await Reactions(fake_bot).on_raw_reaction_add(reaction(THUMBS_UP, message_author_id=999))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "1234" in warnings[0].getMessage()
    assert warnings[0].exc_info is not None
    assert isinstance(warnings[0].exc_info[1], StorageError)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert fake_bot.in_flight.count == 0


async def test_an_applied_reward_is_one_debug_line(fake_bot, service, caplog) -> None:
    """Not INFO: one line per reaction cost 3-6 % of the bot's CPU under load."""
    await suggested(service)
    caplog.set_level(logging.DEBUG, logger="qtune")
    await Reactions(fake_bot).on_raw_reaction_add(reaction(THUMBS_UP, message_author_id=999))
    assert (await service.table(42)).rewards == 1
    lines = [r for r in caplog.records if "reward +10 from user 42" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
