"""The /nowplaying path makes the fewest Discord calls, on the fastest loop installed.

One interaction costs the bot one callback POST (whose answer already holds the message)
and two reaction PUTs: no ``GET .../messages/@original``. The subprocess bot runs on
uvloop, with discord.py's ``speed`` extra (orjson) installed.
"""

from __future__ import annotations

import re

import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import THUMBS_DOWN, THUMBS_UP, nowplaying, running_bot

pytestmark = pytest.mark.timeout(60)

CAROL = 330_000_000_000_000_001


def bot_calls(fake: FakeDiscord, since: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests[since:]]


async def test_nowplaying_is_one_callback_and_two_reactions(
    fake: FakeDiscord, bot_env: dict[str, str], debug_logs
) -> None:
    async with running_bot(fake, bot_env) as qb:
        mark = len(fake.requests)
        inter, msg = await qb.nowplaying(CAROL, "jazz")
        await qb.wait_completed(inter.id)
        calls = bot_calls(fake, mark)
        assert [m for m, _ in calls] == ["POST", "PUT", "PUT"], calls
        assert calls[0][1].startswith(f"/interactions/{inter.id}/")
        assert calls[0][1].endswith("/callback")
        assert not any("@original" in path for _, path in calls), calls
        channel = msg.channel_id
        assert calls[1][1].startswith(f"/channels/{channel}/messages/{msg.id}/reactions/")
        assert fake.reactions_of(msg.id) == {
            THUMBS_UP: [fake.bot_user_id],
            THUMBS_DOWN: [fake.bot_user_id],
        }
        # The recommendation was stored under the message id the callback answered with.
        assert await fake.user_reacts(msg.id, CAROL, THUMBS_UP)
        await qb.eventually(lambda: _rewarded(qb, CAROL), what="the reward")


async def _rewarded(qb, user_id: int) -> bool:
    return await qb.rewards(user_id) == 1


async def test_the_bot_process_runs_on_uvloop(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    proc = await processes(bot_env)
    await proc.wait_output(r"connected as", within=20)
    _, msg = await nowplaying(fake, CAROL, "pop")
    assert msg.id in fake.messages
    assert await proc.terminate() == 0, proc.describe()
    assert "event loop: uvloop" in proc.output, proc.describe()
    assert "@original" not in " ".join(r.path for r in fake.requests)


async def test_the_bot_process_freezes_its_start_up_heap(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    """Its own main freezes start-up's objects, so a full collection never walks them
    (bot/app/heap.py)."""
    proc = await processes(bot_env)
    await proc.wait_output(r"connected as", within=20)
    found = re.search(r"froze (\d+) start-up objects", proc.output)
    assert found, proc.describe()
    assert int(found.group(1)) > 50_000, proc.describe()
    assert await proc.terminate() == 0, proc.describe()
