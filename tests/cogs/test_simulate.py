"""/simulate on the real service over the in-memory storage."""

from __future__ import annotations

import numpy as np
import pytest
from discord import app_commands

import cogs.simulate as simulate_mod
from bot.config import Settings
from bot.engine.learners import make_learner
from bot.errors import InvalidRequest
from bot.render.text import format_policy
from bot.service import SIMULATED_USERS, QTuneService
from cogs.simulate import Simulate
from storage.memory import MemoryStorage
from tests.cogs.charts import ChartCalls, patch_charts
from tests.cogs.fakes import FakeBot, FakeInteraction, kinds


@pytest.fixture(autouse=True)
def charts(monkeypatch: pytest.MonkeyPatch) -> ChartCalls:
    return patch_charts(monkeypatch, simulate_mod)


async def simulate(bot: FakeBot, user: str, episodes: object, user_id: int = 42) -> None:
    inter = FakeInteraction(bot, user_id=user_id, command="simulate")
    await Simulate.simulate.callback(Simulate(bot), inter, user, episodes)  # type: ignore[arg-type]


async def test_simulate_defers_then_answers_with_report_and_curve(fake_bot, service, charts):
    # The same pretraining on a twin service (same seeds, same empty table), for the figures.
    twin = QTuneService(MemoryStorage(), learner=make_learner("seed"), rng=np.random.default_rng(0))
    expected = await twin.simulate(42, "pop_lover", 500)

    await simulate(fake_bot, "Pop_Lover", 500)
    assert kinds(fake_bot.events) == ["defer", "followup"]
    assert fake_bot.events[0][1]["ephemeral"] is True
    _, content, kwargs = fake_bot.events[-1]
    assert kwargs["file"].filename == "learning_curve.png"
    assert f"Mean reward {expected.mean_reward:.2f}" in content
    assert f"last 100 steps: {expected.mean_reward_last_100:.2f}" in content
    view = await service.table(42)
    assert f"Policy now: {format_policy(view.policy)}" in content  # the stored table's policy
    assert int(view.q.astype(bool).sum()) > 0  # the table was really trained and stored
    np.testing.assert_array_equal(view.q, expected.table.q)
    assert charts == [("curve", 500, "pop_lover: 500 steps", True)]


@pytest.mark.parametrize(
    ("user", "episodes"),
    [("generic", 0), ("generic", 100_001), ("nobody", 10), ("/etc/passwd", 10), ("../x.toml", 5)],
)
async def test_simulate_rejects_bad_requests_before_anything(fake_bot, storage, user, episodes):
    with pytest.raises(InvalidRequest):
        await simulate(fake_bot, user, episodes)
    assert fake_bot.events == []  # not even deferred
    assert storage.database.users == {}


async def test_simulate_accepts_every_builtin(fake_bot, service):
    for n, name in enumerate(SIMULATED_USERS):
        await simulate(fake_bot, name.upper(), 1, user_id=100 + n)
    assert [(await service.table(100 + n)).learned for n in range(len(SIMULATED_USERS))] == [
        True
    ] * len(SIMULATED_USERS)


async def test_simulate_respects_the_configured_cap(storage):
    service = QTuneService(storage, learner=make_learner("seed"), max_episodes=1000)
    bot = FakeBot(service, Settings(max_episodes=1000))
    with pytest.raises(InvalidRequest, match="1,000"):
        await simulate(bot, "generic", 1001)
    assert bot.events == []  # rejected before deferring or simulating
    assert storage.database.users == {}


async def test_simulate_has_a_per_user_cooldown(service, storage):
    bot = FakeBot(service, Settings(cooldown=60))
    await simulate(bot, "generic", 5)
    with pytest.raises(app_commands.CommandOnCooldown):
        await simulate(bot, "generic", 5)
    assert storage.database.users[42].learner.visits.sum() == 5  # one run of 5 steps
    assert kinds(bot.events).count("defer") == 1
