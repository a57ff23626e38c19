"""A cluster: 2 bot processes × 2 shards (4 in all) on one PostgreSQL database.

Real ``python -m bot`` processes against the fake Discord, which routes each guild's
events to shard ``(guild_id >> 22) % 4``. Every user is a member of guilds on both
processes, so their reactions reach two processes at the same moment and update the
same table: each must be applied exactly once, with no lost update. Then one process is
killed with SIGKILL in the middle of a stream of reactions, and restarted: nothing is
lost, nothing is applied twice. Stored results are read through the project's service.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.fakediscord import FakeDiscord, Message
from tests.harness import THUMBS_DOWN, THUMBS_UP, BotProcess, nowplaying, open_service_for

pytestmark = pytest.mark.timeout(150)

SHARDS = 4
PROCESS_SHARDS = ("0,1", "2,3")
USERS = [360_000_000_000_000_000 + i for i in range(8)]


def guild_on_shard(shard: int, k: int = 0) -> int:
    """A guild id that Discord routes to ``shard``."""
    return ((1_000_000 + 16 * k + shard) << 22) | 5


@pytest.fixture
def cluster_env(fake: FakeDiscord, bot_env: dict[str, str], pg_url: str) -> dict[str, str]:
    for shard in range(SHARDS):
        fake.add_guild(guild_on_shard(shard))
    return {
        **bot_env,
        "QTUNE_DB": pg_url,
        "QTUNE_DEV_GUILD": "",  # commands synced globally: every guild has them
        "QTUNE_SHARD_COUNT": str(SHARDS),
        "QTUNE_COOLDOWN": "0",
        "QTUNE_LOG_LEVEL": "INFO",
    }


async def start_cluster(fake: FakeDiscord, processes, env: dict[str, str]) -> list[BotProcess]:
    # One after the other, as an operator (or systemd) starts them; discord.py waits 5 s
    # between the two identifies inside each process.
    started = []
    for ids in PROCESS_SHARDS:
        started.append(await processes({**env, "QTUNE_SHARD_IDS": ids}, ready=fake))
    for shard in range(SHARDS):
        await fake.wait_ready(shard_id=shard, within=30)
    return started


async def stored(env: dict[str, str]) -> tuple[dict[int, tuple[int, int]], list]:
    """Per user (rewards, total visits), and the recommendations still unrewarded."""
    service, storage = await open_service_for(env)
    try:
        users = {}
        for u in USERS:
            rec = await storage.get_user(u)
            assert rec is not None, u
            users[u] = (rec.rewards, int(rec.learner.visits.sum()))
        return users, await service.pending()
    finally:
        await storage.close()


async def all_applied(env: dict[str, str], within: float = 40.0) -> None:
    """Poll the database until none of the users' recommendations is unrewarded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        left = [p for p in (await stored(env))[1] if p.user_id in USERS]
        if not left:
            return
        assert loop.time() < deadline, f"{len(left)} reaction(s) never applied"
        await asyncio.sleep(0.2)


def command_syncs(fake: FakeDiscord) -> list:
    return [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]


async def test_reactions_on_two_processes_at_once_apply_exactly_once(
    fake: FakeDiscord, processes, cluster_env: dict[str, str]
) -> None:
    first, second = await start_cluster(fake, processes, cluster_env)
    assert len(command_syncs(fake)) == 1, "only shard 0's process syncs the commands"
    assert "not syncing app commands" in second.output
    # Each user asks in a guild of every shard: two recommendations on each process.
    asked = await asyncio.gather(
        *(
            nowplaying(fake, u, "rock", guild_id=guild_on_shard(s), within=20)
            for u in USERS
            for s in range(SHARDS)
        )
    )
    messages = [msg for _, msg in asked]
    owners = [u for u in USERS for _ in range(SHARDS)]
    # ...and reacts to all four at the same moment: two processes, one table each.
    emojis = [THUMBS_UP if i % 3 else THUMBS_DOWN for i in range(len(messages))]
    delivered = await asyncio.gather(
        *(fake.user_reacts(m.id, u, e) for m, u, e in zip(messages, owners, emojis, strict=True))
    )
    assert all(delivered)
    await all_applied(cluster_env)
    users, _ = await stored(cluster_env)
    assert users == dict.fromkeys(USERS, (SHARDS, SHARDS))  # 4 rewards each, none lost
    for proc in (first, second):
        assert "Traceback" not in proc.output, proc.describe()
        assert await proc.terminate() == 0, proc.describe()


async def test_kill_9_of_one_process_mid_stream_loses_and_doubles_nothing(
    fake: FakeDiscord, processes, cluster_env: dict[str, str]
) -> None:
    _, second = await start_cluster(fake, processes, cluster_env)
    asked = await asyncio.gather(
        *(
            nowplaying(fake, u, "jazz", guild_id=guild_on_shard(s), within=20)
            for u in USERS
            for s in range(SHARDS)
        )
    )
    pairs: list[tuple[Message, int]] = [
        (msg, u)
        for (_, msg), u in zip(asked, [u for u in USERS for _ in range(SHARDS)], strict=True)
    ]

    async def react(batch: list[tuple[Message, int]]) -> None:
        await asyncio.gather(*(fake.user_reacts(m.id, u, THUMBS_UP) for m, u in batch))

    third = len(pairs) // 3
    await react(pairs[:third])
    # Mid-stream: the second process dies while reactions keep coming on both.
    stream = asyncio.create_task(react(pairs[third : 2 * third]))
    await asyncio.sleep(0.05)
    assert await second.kill() != 0
    await stream
    await react(pairs[2 * third :])  # the dead process's guilds: Discord keeps them
    restarted = await processes({**cluster_env, "QTUNE_SHARD_IDS": "2,3"}, ready=fake)
    await restarted.wait_output(r"start-up catch-up", within=30)
    caught = re.search(r"start-up catch-up: (\d+) of", restarted.output)
    assert caught is not None
    assert int(caught.group(1)) >= 1, "reactions given while it was dead were caught up"
    await all_applied(cluster_env)
    await asyncio.sleep(1.0)  # a late duplicate would have landed by now
    users, _ = await stored(cluster_env)
    assert users == dict.fromkeys(USERS, (SHARDS, SHARDS))
    assert "Traceback" not in restarted.output, restarted.describe()
