"""Narrow Discord fakes for unit-testing the cogs: a bot with what the cogs use, and
interactions and messages that record every call in ``bot.events``.

There is no fake service: the cogs run on the real :class:`QTuneService` over the
in-memory storage (see ``conftest.py``), so every rule they reach is the real one. The
real discord.py client is exercised against the fake Discord in tests/e2e/.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import discord

from bot.app.busy import InFlight
from bot.app.cooldowns import Cooldowns
from bot.config import Settings
from bot.service import QTuneService

Event = tuple[Any, ...]


class FakeBot:
    """What the cogs touch on the bot: service, settings, cooldowns, user, in_flight."""

    def __init__(self, service: QTuneService, settings: Settings | None = None) -> None:
        self.service = service
        self.settings = settings or Settings()
        self.cooldowns = Cooldowns(self.settings.cooldown)
        self.user = SimpleNamespace(id=999, bot=True)
        self.in_flight = InFlight()
        self.events: list[Event] = []
        """Every call the cogs made on Discord's side, in order."""
        self.shutting_down = False


class FakeMessage:
    """The posted reply; ``on_react`` runs as each reaction is added (to see what was
    stored by then)."""

    def __init__(
        self,
        message_id: int,
        events: list[Event],
        forbid: bool = False,
        on_react: Callable[[], object] | None = None,
    ) -> None:
        self.id = message_id
        self.events = events
        self.forbid = forbid
        self.on_react = on_react

    async def add_reaction(self, emoji: str) -> None:
        if self.forbid:
            raise discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), "no perms")
        seen = None if self.on_react is None else self.on_react()
        self.events.append(("react", self.id, emoji, seen))


class FakeResponse:
    def __init__(self, events: list[Event], message: FakeMessage) -> None:
        self.events = events
        self.message = message
        self.done = False

    def is_done(self) -> bool:
        return self.done

    async def send_message(self, content: str | None = None, **kwargs: Any) -> SimpleNamespace:
        assert not self.done, "answered twice"
        self.done = True
        self.events.append(("send_message", content, kwargs))
        # discord.py's InteractionCallbackResponse: the callback's answer holds the message.
        return SimpleNamespace(resource=self.message)

    async def defer(self, **kwargs: Any) -> None:
        assert not self.done, "answered twice"
        self.done = True
        self.events.append(("defer", kwargs))

    async def edit_message(self, **kwargs: Any) -> None:
        self.done = True
        self.events.append(("edit_message", kwargs))


class FakeFollowup:
    def __init__(self, events: list[Event]) -> None:
        self.events = events

    async def send(self, content: str | None = None, **kwargs: Any) -> None:
        self.events.append(("followup", content, kwargs))


class FakeInteraction:
    """An interaction of ``user_id``; its replies go to ``bot.events``."""

    def __init__(
        self,
        bot: FakeBot,
        *,
        user_id: int = 42,
        guild_id: int | None = 7,
        channel_id: int = 8,
        permissions: discord.Permissions | None = None,
        message_id: int = 1234,
        forbid_reactions: bool = False,
        on_react: Callable[[], object] | None = None,
        command: str = "nowplaying",
    ) -> None:
        self.client = bot
        self.events = bot.events
        self.user = SimpleNamespace(id=user_id, display_name=f"user{user_id}", bot=False)
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.permissions = permissions or discord.Permissions.none()
        self.command = SimpleNamespace(qualified_name=command)
        self.message = FakeMessage(message_id, self.events, forbid_reactions, on_react)
        self.response = FakeResponse(self.events, self.message)
        self.followup = FakeFollowup(self.events)

    async def original_response(self) -> FakeMessage:
        self.events.append(("original_response",))
        return self.message

    async def edit_original_response(self, **kwargs: Any) -> None:
        self.events.append(("edit_original_response", kwargs))


def kinds(events: list[Event]) -> list[str]:
    return [e[0] for e in events]
