"""A second bot process on the same SQLite file is refused at start with one line (a
cluster needs PostgreSQL); the running bot is untouched, and after it stops (even by
kill -9) the next start is accepted."""

from __future__ import annotations

import pytest

from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.timeout(60)


async def test_a_second_bot_on_one_sqlite_file_is_refused(
    fake: FakeDiscord, bot_env: dict[str, str], processes
) -> None:
    first = await processes(bot_env, ready=fake)
    second = await processes({**bot_env, "QTUNE_LOG_LEVEL": "WARNING"})
    assert await second.wait(within=30) == 2, second.describe()
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.describe()
    assert lines[0].startswith("error: another bot process already runs on")
    assert "postgresql://" in lines[0]
    assert first.proc is not None
    assert first.proc.returncode is None, "the running bot was not disturbed"
    await first.kill()  # the kernel drops the lock with the process
    third = await processes(bot_env, ready=fake)
    assert await third.terminate() == 0, third.describe()
