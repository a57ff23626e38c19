"""Scenario 8: /qtable and /simulate answer with real PNGs; /simulate does not stall others."""

from __future__ import annotations

import io
import time

import pytest

from tests.fakediscord import FakeDiscord, Message
from tests.harness import running_bot

pytestmark = pytest.mark.timeout(60)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAROL = 330_000_000_000_000_001
DAVE = 330_000_000_000_000_002

# The one timing bound of the spec ("answered within about a second"), kept loose for CI.
BUSY_BOUND_S = 2.0
measured: dict[str, float] = {}


def decode_png(data: bytes) -> tuple[int, int]:
    """Check the magic bytes and decode the whole image; return (width, height)."""
    assert data[:8] == PNG_MAGIC, f"not a PNG: {data[:16]!r}"
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    height, width = pixels.shape[:2]
    return width, height


def only_png(msg: Message, filename: str) -> bytes:
    assert [a.filename for a in msg.attachments] == [filename], msg
    att = msg.attachments[0]
    width, height = decode_png(att.data)
    assert width >= 100, f"{filename} is only {width}x{height}"
    assert height >= 100, f"{filename} is only {width}x{height}"
    return att.data


async def test_qtable_png(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    async with running_bot(fake, bot_env) as qb:
        _, suggestion = await qb.nowplaying(CAROL, "jazz")
        assert await fake.user_reacts(suggestion.id, CAROL, "👍")
        await qb.eventually(lambda: qb.rewards(CAROL), what="the 👍 reward")
        inter = await fake.send_command("qtable", user_id=CAROL)
        await fake.interaction_response(inter.id)
        # The first render starts the worker process (forkserver, then numpy and matplotlib
        # imports): 13-26 s measured on the 2-core CI machine at load 13, so 20 s flaked.
        msg = await fake.final_message(inter.id, within=45)
        only_png(msg, "qtable.png")
        assert msg.ephemeral, "/qtable is ephemeral by default"
        for genre in ("Pop", "Rock", "Jazz", "Classical", "HipHop"):
            assert genre in msg.content


async def test_simulate_png_and_busy_bot(fake: FakeDiscord, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "QTUNE_COOLDOWN": "0"}
    async with running_bot(fake, env) as qb:
        sim = await fake.send_command(
            "simulate", {"user": "pop_lover", "episodes": 100_000}, user_id=CAROL
        )
        await fake.interaction_response(sim.id)
        assert sim.callback_type == 5, f"/simulate must defer first\n{fake.dump()}"

        # While the simulation runs, someone else asks for a recommendation.
        started = time.monotonic()
        other = await fake.send_command("nowplaying", {"genre": "rock"}, user_id=DAVE)
        await fake.interaction_response(other.id, within=10)
        latency = time.monotonic() - started
        sim_still_running = fake.messages[sim.original_message_id].loading
        measured["nowplaying_during_simulate_s"] = latency
        print(
            f"/nowplaying answered in {latency:.3f}s while /simulate ran "
            f"(simulation still running: {sim_still_running})"
        )
        assert other.callback_type == 4
        assert latency < BUSY_BOUND_S, f"/nowplaying took {latency:.2f}s during /simulate"

        msg = await fake.final_message(sim.id, within=40)
        only_png(msg, "learning_curve.png")
        assert "pop_lover" in msg.content
        await qb.wait_completed(sim.id)
        view = await qb.service.table(CAROL)
        assert view.q.any(), "the simulation trained the caller's table"
