"""SIGTERM while /nowplaying is adding its reactions (issue 13 §7): the bot finishes or
abandons the command quietly (no ERROR, no traceback, exit 0), and no reward is lost."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakediscord import FakeDiscord, Request
from tests.harness import THUMBS_UP, open_service_for

pytestmark = pytest.mark.timeout(90)

NORA = 380_000_000_000_000_001


def hold_reactions(fake: FakeDiscord, release: asyncio.Event) -> list[str]:
    """Make the fake answer the bot's reaction PUTs only once ``release`` is set."""
    seen: list[str] = []

    async def hold(rec: Request) -> None:
        seen.append(rec.path)
        fake.changes.notify()
        await release.wait()

    fake.intercept("PUT", "channels/{c}/messages/{m}/reactions/{e}/@me", hold)
    return seen


@pytest.mark.parametrize("released", [False, True], ids=["abandoned", "finished"])
async def test_sigterm_while_adding_reactions(
    fake: FakeDiscord, bot_env: dict[str, str], processes, released: bool
) -> None:
    env = {**bot_env, "QTUNE_LOG_LEVEL": "INFO"}
    release = asyncio.Event()
    seen = hold_reactions(fake, release)
    bot = await processes(env, ready=fake)
    inter = await fake.send_command("nowplaying", {"genre": "rock"}, user_id=NORA)
    await fake.interaction_response(inter.id, within=10)
    await fake.wait_until(lambda: bool(seen), within=10)  # the first 👍 PUT is in flight
    bot.proc.send_signal(15)  # SIGTERM
    if released:
        await asyncio.sleep(0.3)
        release.set()
    rc = await bot.wait(30)
    release.set()
    out = bot.output
    assert rc == 0, bot.describe()
    assert "Traceback" not in out, bot.describe()
    assert " ERROR " not in out, bot.describe()
    assert "Connector is closed" not in out, bot.describe()
    msg_id = inter.original_message_id
    assert msg_id is not None
    if released:
        assert fake.reactions_of(msg_id).get(THUMBS_UP) == [fake.bot_user_id]

    # The suggestion was stored; a 👍 given while the bot is down counts after a restart.
    await fake.user_reacts(msg_id, NORA, THUMBS_UP)
    again = await processes(env, ready=fake)
    await again.wait_output(r"start-up catch-up: 1 of 1", within=15)
    assert await again.terminate() == 0, again.describe()
    service, storage = await open_service_for(env)
    try:
        assert (await service.table(NORA)).rewards == 1
    finally:
        await storage.close()
