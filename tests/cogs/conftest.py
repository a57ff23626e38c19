"""Narrow fakes for unit-testing the cogs: a service that follows the contract in
docs/design.md, a bot with what the cogs use, and interactions that record every call.

The real service and the real discord.py client are exercised in tests/e2e/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import numpy as np
import pytest

from bot.app.busy import InFlight
from bot.app.cooldowns import Cooldowns
from bot.config import Settings
from bot.engine.qlearning import DEFAULT_GENRES
from bot.errors import InvalidRequest, UnknownGenre
from bot.service import FeedbackResult, QTuneService, SimulationReport, Suggestion, TableView

ALIASES = {"hip hop": "HipHop", "hip-hop": "HipHop", "hiphop": "HipHop"}


@dataclass
class FakeService:
    """Records calls in ``events``; suggests ``next_action`` every time."""

    events: list = field(default_factory=list)
    genres: tuple[str, ...] = DEFAULT_GENRES
    next_action: str = "Jazz"
    feedback_result: FeedbackResult | None = None
    meta: dict = field(default_factory=dict)
    pending_recs: list = field(default_factory=list)
    max_episodes: int = 100_000

    def check_simulation(self, user_spec: str, episodes: int, *, allow_files: bool = False) -> str:
        # The real rule, not a copy of it.
        return QTuneService.check_simulation(self, user_spec, episodes, allow_files=allow_files)  # type: ignore[arg-type]

    def parse_genre(self, text: str) -> str:
        key = text.strip().casefold()
        for g in self.genres:
            if g.casefold() == key:
                return g
        if key in ALIASES:
            return ALIASES[key]
        raise UnknownGenre(f"Unknown genre {text!r}. Choose one of: {', '.join(self.genres)}.")

    def cancel_simulations(self) -> None:
        self.events.append(("cancel_simulations",))

    async def run_cpu(self, fn, /, *args, **kwargs):
        self.events.append(("run_cpu", getattr(fn, "__name__", "?")))
        return fn(*args, **kwargs)

    async def recommend(self, user_id: int, genre: str) -> Suggestion:
        self.events.append(("recommend", user_id, genre))
        return Suggestion(user_id, genre, self.next_action, 0.75)

    async def record(self, message_id, suggestion, guild_id, channel_id) -> None:
        self.events.append(("record", message_id, suggestion, guild_id, channel_id))

    async def feedback(self, message_id: int, user_id: int, liked: bool) -> FeedbackResult:
        self.events.append(("feedback", message_id, user_id, liked))
        return self.feedback_result or FeedbackResult(
            True, "applied", "Rock", "Jazz", 10.0 if liked else -5.0, 10.0, 0.995
        )

    async def table(self, user_id: int) -> TableView:
        self.events.append(("table", user_id))
        n = len(self.genres)
        q = np.arange(n * n, dtype=float).reshape(n, n) / 10
        policy = dict.fromkeys(self.genres, self.genres[-1])
        return TableView(user_id, self.genres, q, 0.5, 3, "Rock", policy)

    async def simulate(self, user_id, user_spec, episodes, seed=None) -> SimulationReport:
        self.events.append(("simulate", user_id, user_spec, episodes))
        if episodes > 100_000:
            raise InvalidRequest("too many episodes")
        view = await self.table(user_id)
        rewards = np.full(episodes, 10.0)
        return SimulationReport(user_spec, episodes, 7.5, 9.25, rewards, view.policy, view)

    async def reset(self, user_id: int) -> bool:
        self.events.append(("reset", user_id))
        return True

    async def pending(self, max_age_s: float = 86400) -> list:
        self.events.append(("pending", max_age_s))
        return list(self.pending_recs)

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.events.append(("set_meta", key))
        self.meta[key] = value


class FakeBot:
    """What the cogs touch on the bot: service, settings, cooldowns, user, in_flight."""

    def __init__(self, service: FakeService, settings: Settings | None = None) -> None:
        self.service = service
        self.settings = settings or Settings()
        self.cooldowns = Cooldowns(self.settings.cooldown)
        self.user = SimpleNamespace(id=999, bot=True)
        self.in_flight = InFlight()


class FakeMessage:
    def __init__(self, message_id: int, events: list, forbid: bool = False) -> None:
        self.id = message_id
        self.events = events
        self.forbid = forbid

    async def add_reaction(self, emoji: str) -> None:
        if self.forbid:
            raise discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), "no perms")
        self.events.append(("react", self.id, emoji))


class FakeResponse:
    def __init__(self, events: list) -> None:
        self.events = events
        self.done = False

    def is_done(self) -> bool:
        return self.done

    async def send_message(self, content: str | None = None, **kwargs: Any) -> None:
        assert not self.done, "answered twice"
        self.done = True
        self.events.append(("send_message", content, kwargs))

    async def defer(self, **kwargs: Any) -> None:
        assert not self.done, "answered twice"
        self.done = True
        self.events.append(("defer", kwargs))

    async def edit_message(self, **kwargs: Any) -> None:
        self.done = True
        self.events.append(("edit_message", kwargs))


class FakeFollowup:
    def __init__(self, events: list) -> None:
        self.events = events

    async def send(self, content: str | None = None, **kwargs: Any) -> None:
        self.events.append(("followup", content, kwargs))


class FakeInteraction:
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
        command: str = "nowplaying",
    ) -> None:
        self.client = bot
        self.events = bot.service.events
        self.user = SimpleNamespace(id=user_id, display_name=f"user{user_id}", bot=False)
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.permissions = permissions or discord.Permissions.none()
        self.command = SimpleNamespace(qualified_name=command)
        self.response = FakeResponse(self.events)
        self.followup = FakeFollowup(self.events)
        self.message = FakeMessage(message_id, self.events, forbid_reactions)

    async def original_response(self) -> FakeMessage:
        self.events.append(("original_response",))
        return self.message

    async def edit_original_response(self, **kwargs: Any) -> None:
        self.events.append(("edit_original_response", kwargs))


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def fake_bot(service: FakeService) -> FakeBot:
    return FakeBot(service)


def kinds(events: list) -> list[str]:
    return [e[0] for e in events]
