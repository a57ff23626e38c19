"""/reset and its confirmation buttons, on the real service over the in-memory storage."""

from __future__ import annotations

from bot.service import QTuneService
from cogs.reset import ConfirmReset, Reset
from tests.cogs.fakes import FakeBot, FakeInteraction, kinds


async def remembered(service: QTuneService, user_id: int) -> None:
    """A user the bot knows: a table and a recommendation."""
    suggestion = await service.recommend(user_id, "Jazz")
    await service.record(user_id * 10, suggestion, 7, 8)


async def known(service: QTuneService, user_id: int) -> bool:
    pending = {r.user_id for r in await service.pending()}
    return user_id in pending or (await service.table(user_id)).current_genre is not None


async def test_reset_with_confirm_option_deletes(fake_bot, service):
    await remembered(service, 42)
    await remembered(service, 43)
    inter = FakeInteraction(fake_bot, user_id=42, command="reset")
    await Reset.reset.callback(Reset(fake_bot), inter, True)  # type: ignore[arg-type]
    assert kinds(fake_bot.events) == ["send_message"]
    assert fake_bot.events[0][2]["ephemeral"] is True
    assert "deleted" in fake_bot.events[0][1]
    assert not await known(service, 42)
    assert await known(service, 43)  # only the caller's data


async def test_reset_of_nobody_says_there_was_nothing(fake_bot):
    inter = FakeInteraction(fake_bot, user_id=42, command="reset")
    await Reset.reset.callback(Reset(fake_bot), inter, True)  # type: ignore[arg-type]
    assert "nothing to delete" in fake_bot.events[0][1]


async def test_reset_without_confirm_asks_first(fake_bot, service):
    await remembered(service, 42)
    inter = FakeInteraction(fake_bot, user_id=42, command="reset")
    await Reset.reset.callback(Reset(fake_bot), inter, False)  # type: ignore[arg-type]
    assert kinds(fake_bot.events) == ["send_message"]
    assert await known(service, 42)  # nothing deleted yet
    kwargs = fake_bot.events[0][2]
    assert kwargs["ephemeral"] is True
    view = kwargs["view"]
    assert isinstance(view, ConfirmReset)
    labels = sorted(item.label for item in view.children)  # type: ignore[attr-defined]
    assert labels == ["Cancel", "Delete my data"]


async def test_reset_buttons(fake_bot: FakeBot, service):
    await remembered(service, 42)
    origin = FakeInteraction(fake_bot, user_id=42)

    view = ConfirmReset(fake_bot, 42, origin)  # type: ignore[arg-type]
    stranger = FakeInteraction(fake_bot, user_id=43)
    assert await view.interaction_check(stranger) is False  # type: ignore[arg-type]
    await view.cancel.callback(FakeInteraction(fake_bot, user_id=42))  # type: ignore[call-arg,arg-type]
    assert await known(service, 42)
    assert "nothing deleted" in fake_bot.events[-1][1]["content"]

    view = ConfirmReset(fake_bot, 42, origin)  # type: ignore[arg-type]
    assert await view.interaction_check(FakeInteraction(fake_bot, user_id=42)) is True  # type: ignore[arg-type]
    await view.confirm.callback(FakeInteraction(fake_bot, user_id=42))  # type: ignore[call-arg,arg-type]
    assert not await known(service, 42)
    assert view.result is True
    assert fake_bot.events[-1][1]["view"] is None  # buttons removed


async def test_reset_timeout_deletes_nothing(fake_bot, service):
    await remembered(service, 42)
    origin = FakeInteraction(fake_bot, user_id=42)
    view = ConfirmReset(fake_bot, 42, origin)  # type: ignore[arg-type]
    await view.on_timeout()
    assert await known(service, 42)
    assert "nothing was deleted" in fake_bot.events[-1][1]["content"]
