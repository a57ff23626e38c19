"""Scenarios 6 and 7: SIGTERM and kill -9, with reactions given while the bot is down.

The bot runs as a real ``python -m bot`` subprocess. Progress is observed through the fake
(requests, gateway sessions) and the bot's log lines; the stored result is checked through
the project's own service after the bot has stopped.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3

import numpy as np
import pytest

from tests.fakediscord import FakeDiscord
from tests.harness import THUMBS_DOWN, THUMBS_UP, nowplaying, open_service_for, suggested

pytestmark = pytest.mark.timeout(60)

ERIN = 340_000_000_000_000_001
FRANK = 340_000_000_000_000_002
CROWD = [341_000_000_000_000_000 + i for i in range(30)]


async def stored_tables(env: dict[str, str], users: list[int]) -> dict[int, object]:
    service, storage = await open_service_for(env)
    try:
        return {u: await service.table(u) for u in users}
    finally:
        await storage.close()


async def test_sigterm_and_reactions_while_down(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    env = dict(bot_env)  # DEBUG: every reward is logged
    first = await processes(env, ready=fake)
    _, erin_msg = await nowplaying(fake, ERIN, "jazz")
    _, frank_msg = await nowplaying(fake, FRANK, "pop")
    assert await first.terminate() == 0, first.describe()
    await fake.wait_disconnected()

    # While the bot is down, Erin reacts: Discord keeps it, but nobody receives the event.
    assert not await fake.user_reacts(erin_msg.id, ERIN, THUMBS_UP)

    mark = len(fake.requests)
    second = await processes(env, ready=fake)
    # Start-up reconciliation reads the reactions of the pending recommendations.
    await fake.wait_for_request(
        lambda r: r.method == "GET" and f"/messages/{erin_msg.id}/reactions/" in r.path,
        within=10,
        since=mark,
    )
    await second.wait_output(r"start-up catch-up", within=10)
    # Frank reacts to his message from before the restart, with the bot running.
    assert await fake.user_reacts(frank_msg.id, FRANK, THUMBS_DOWN)
    await second.wait_output(rf"from user {FRANK}\b", within=10)
    assert await second.terminate() == 0, second.describe()

    tables = await stored_tables(env, [ERIN, FRANK])
    erin, frank = tables[ERIN], tables[FRANK]
    assert erin.rewards == 1, second.describe()
    assert frank.rewards == 1, second.describe()
    order = list(erin.genres)
    expected = np.zeros_like(erin.q)
    expected[order.index("Jazz"), order.index(suggested(erin_msg.content))] = 1.0  # 0.1 * (+10)
    np.testing.assert_allclose(erin.q, expected, atol=1e-12)
    expected = np.zeros_like(frank.q)
    expected[order.index("Pop"), order.index(suggested(frank_msg.content))] = -0.5  # 0.1 * (-5)
    np.testing.assert_allclose(frank.q, expected, atol=1e-12)


async def test_kill_9_mid_stream(fake: FakeDiscord, bot_env: dict[str, str], processes) -> None:
    env = dict(bot_env)  # DEBUG: every reward is logged
    db_path = env["QTUNE_DB"]
    first = await processes(env, ready=fake)
    genres = ["pop", "rock", "jazz", "classical", "hiphop"]
    made = await asyncio.gather(*(nowplaying(fake, u, genres[i % 5]) for i, u in enumerate(CROWD)))
    messages = [msg for _, msg in made]

    # A stream of reactions: ten applied one after the other, then ten more sent at once
    # and kill -9 while they are in flight, then ten more while the bot is dead.
    for msg, user in zip(messages[:10], CROWD[:10], strict=True):
        assert await fake.user_reacts(msg.id, user, THUMBS_UP)
        await first.wait_output(rf"from user {user}\b", within=10)
    in_flight = await asyncio.gather(
        *(
            fake.user_reacts(m.id, u, THUMBS_UP)
            for m, u in zip(messages[10:20], CROWD[10:20], strict=True)
        )
    )
    assert await first.kill() == -9
    assert all(in_flight)
    applied_before_kill = len(re.findall(r"reward \+10 from user", first.output))
    await fake.wait_disconnected()
    for msg, user in zip(messages[20:], CROWD[20:], strict=True):
        assert not await fake.user_reacts(msg.id, user, THUMBS_UP)

    second = await processes(env, ready=fake)
    await second.wait_output(r"start-up catch-up", within=20)
    assert await second.terminate() == 0, second.describe()
    caught_up = re.search(r"start-up catch-up: (\d+) of (\d+)", second.output)
    print(
        f"applied before kill -9: {applied_before_kill}; "
        f"start-up catch-up: {caught_up.group(0) if caught_up else '?'}"
    )

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    tables = await stored_tables(env, CROWD)
    # Every reaction that exists on Discord was applied exactly once.
    wrong = {u: t.rewards for u, t in tables.items() if t.rewards != 1}
    assert not wrong, f"users without exactly one reward: {wrong}\n{second.describe()}"
    for user, msg in zip(CROWD, messages, strict=True):
        assert fake.reactions_of(msg.id)[THUMBS_UP] == [fake.bot_user_id, user]
