"""Make the README's /qtable picture from a real run: the bot, unmodified, on the loopback fake.

A simulated pop_lover listener says what they are playing, reacts 👍 on +10 and 👎 on −5
(and ignores the +1 "brief listen"), 30 times; then /qtable's PNG attachment is saved.

    uv run python docs/make_pictures.py [--out docs/qtable_discord.png] [--learner dyna]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np

from bot.engine.listeners import REWARDS, resolve_user
from tests.fakediscord import FakeDiscord
from tests.harness import GENRES, REPO, THUMBS_DOWN, THUMBS_UP, bot_environment, running_bot
from tests.harness import suggested as suggested_genre

LISTENER = 420_000_000_000_000_001


async def make(learner: str, reactions: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    user = resolve_user("pop_lover")
    genres = GENRES
    probs = user.reward_probs(genres)
    async with FakeDiscord() as fake:
        db = Path(tempfile.mkdtemp()) / "pictures.sqlite3"
        env = bot_environment(fake, db, QTUNE_COOLDOWN="0", QTUNE_LEARNER=learner)
        async with running_bot(fake, env) as qb:
            current = "Rock"
            for _ in range(reactions):
                _, msg = await qb.nowplaying(LISTENER, current)
                suggested = suggested_genre(msg.content)
                s, a = genres.index(current), genres.index(suggested)
                reward = rng.choice(REWARDS, p=probs[s, a])
                if reward != REWARDS[1]:
                    emoji = THUMBS_UP if reward > 0 else THUMBS_DOWN
                    await fake.user_reacts(msg.id, LISTENER, emoji)
                await asyncio.sleep(0.05)
                current = suggested if reward > 0 else genres[int(rng.integers(len(genres)))]
            inter = await fake.send_command("qtable", user_id=LISTENER)
            final = await fake.final_message(inter.id, within=30)
            print(final.content)
            return final.attachments[0].data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "qtable_discord.png")
    parser.add_argument("--learner", default="dyna")
    parser.add_argument("--reactions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.write_bytes(asyncio.run(make(args.learner, args.reactions, args.seed)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
