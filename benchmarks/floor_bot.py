"""The floor: the least a discord.py bot can do for qtune's /nowplaying, for the load benchmark.

    DISCORD_TOKEN=... DISCORD_API_BASE=... DISCORD_GATEWAY_URL=... python benchmarks/floor_bot.py

The same Discord work as qtune, with the fewest calls and nothing else: answer the
interaction with a suggestion (the callback returns the message, so no GET follows), add
👍 and 👎, and receive the reaction events (same intents as qtune) without acting on them.
No storage, no learner, no logging per event; the same event loop as qtune (uvloop
when it is installed), so the two differ only in what qtune adds. It reads the same
settings as the bot (``DISCORD_*``, ``QTUNE_DEV_GUILD``, ``QTUNE_GUILD_READY_TIMEOUT``), so
``benchmarks/e2e_load.py`` starts it exactly as it starts qtune, and measures its CPU per
interaction as the denominator of qtune's.

``--durable`` adds the least a bot must do to keep what qtune keeps, durably: the "floor
with storage" of ``e2e_load.py --durable-floor``. Each suggestion comes from the member's
own Q-table (ε-greedy, the seed's rule on plain lists); after the reply the suggestion is
written to SQLite (``QTUNE_DB``), and the requester's first 👍/👎 is one TD update whose reward
and new table are written too. One writer thread commits whatever is queued in one
transaction (WAL, ``synchronous=FULL``, qtune's default), so a commit is shared as in
qtune; the event loop only enqueues. Tables live in memory (this process is the file's only
writer and starts from an empty file), so nothing is read back. What it leaves out, and
qtune does: the model-based learner, propensities, explanations, retries when the database
is busy, `/reset`, per-guild tallies.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import signal
import sqlite3
import struct
import sys
import threading
from collections.abc import Callable

import discord
import yarl
from discord import app_commands

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"
ALPHA, GAMMA, EPSILON = 0.1, 0.9, 0.1
LIKE, DISLIKE = 10.0, -5.0
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS recommendations (message_id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL, genre INTEGER NOT NULL, suggestion INTEGER NOT NULL, reward REAL)",
    "CREATE TABLE IF NOT EXISTS tables (user_id INTEGER PRIMARY KEY, q BLOB NOT NULL)",
)
INSERT_REC = "INSERT INTO recommendations VALUES (?, ?, ?, ?, NULL)"
SET_REWARD = "UPDATE recommendations SET reward = ? WHERE message_id = ?"
SAVE_TABLE = "INSERT INTO tables VALUES (?, ?) ON CONFLICT(user_id) DO UPDATE SET q = excluded.q"


class Journal:
    """Durable writes off the event loop: one thread commits everything queued at once."""

    def __init__(self, path: str) -> None:
        self._queue: queue.SimpleQueue[tuple[str, tuple[object, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(path,), name="journal")
        self._thread.start()

    def write(self, sql: str, *args: object) -> None:
        self._queue.put((sql, args))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self, path: str) -> None:
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA:
            con.execute(statement)
        done = False
        while not done:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get())
            con.execute("BEGIN")
            for item in batch:
                if item is None:
                    done = True
                else:
                    con.execute(*item)
            con.execute("COMMIT")
        con.close()


class Tables:
    """The seed's rule on plain lists: ε-greedy choice and one TD update per reward."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.q: dict[int, list[list[float]]] = {}
        self.pending: dict[int, tuple[int, int, int]] = {}

    def suggest(self, user: int, genre: int) -> int:
        row = self.q.setdefault(user, [[0.0] * len(GENRES) for _ in GENRES])[genre]
        if random.random() < EPSILON:
            return random.randrange(len(GENRES))
        return max(range(len(GENRES)), key=row.__getitem__)

    def record(self, message: int, user: int, genre: int, suggestion: int) -> None:
        self.pending[message] = (user, genre, suggestion)
        self.journal.write(INSERT_REC, message, user, genre, suggestion)

    def react(self, message: int, user: int, emoji: str) -> None:
        rec = self.pending.get(message)
        if rec is None or rec[0] != user or emoji not in (THUMBS_UP, THUMBS_DOWN):
            return
        del self.pending[message]
        _, s, a = rec
        reward = LIKE if emoji == THUMBS_UP else DISLIKE
        q = self.q[user]
        q[s][a] += ALPHA * (reward + GAMMA * max(q[a]) - q[s][a])
        self.journal.write(SET_REWARD, reward, message)
        table = struct.pack(f"{len(GENRES) ** 2}d", *(v for row in q for v in row))  # row-major
        self.journal.write(SAVE_TABLE, user, table)


class FloorBot(discord.Client):
    tables: Tables | None = None

    def __init__(self, dev_guild: int | None, guild_ready_timeout: float) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        super().__init__(intents=intents, guild_ready_timeout=guild_ready_timeout)
        self.tree = app_commands.CommandTree(self)
        self.dev_guild = discord.Object(dev_guild) if dev_guild else None
        self.tree.add_command(
            app_commands.Command(
                name="nowplaying",
                description="Tell me the genre you're playing; I'll suggest what's next",
                callback=nowplaying,
            )
        )

    async def setup_hook(self) -> None:
        if self.dev_guild is not None:
            self.tree.copy_global_to(guild=self.dev_guild)
        await self.tree.sync(guild=self.dev_guild)

    async def on_ready(self) -> None:
        assert self.user is not None
        print(f"connected as {self.user} (id {self.user.id})", flush=True)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.tables is not None:
            self.tables.react(payload.message_id, payload.user_id, str(payload.emoji))


async def nowplaying(interaction: discord.Interaction, genre: str) -> None:
    """Suggest a genre; the callback's response carries the message to react on."""
    tables = getattr(interaction.client, "tables", None)
    state = next((i for i, g in enumerate(GENRES) if g.lower() == genre.lower()), 0)
    pick = (
        random.randrange(len(GENRES))
        if tables is None
        else tables.suggest(interaction.user.id, state)
    )
    text = (
        f"🎧 You're listening to **{genre}**. Try **{GENRES[pick]}** next!\n"
        f"React {THUMBS_UP} if you like the suggestion or {THUMBS_DOWN} if you don't."
    )
    sent = await interaction.response.send_message(
        text, allowed_mentions=discord.AllowedMentions.none()
    )
    message = sent.resource
    if isinstance(message, discord.InteractionMessage):
        if tables is not None:
            tables.record(message.id, interaction.user.id, state, pick)
        await message.add_reaction(THUMBS_UP)
        await message.add_reaction(THUMBS_DOWN)


async def main() -> int:
    env = os.environ
    if api := env.get("DISCORD_API_BASE"):
        discord.http.Route.BASE = api.rstrip("/")
    if gateway := env.get("DISCORD_GATEWAY_URL"):
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    dev_guild = int(env["QTUNE_DEV_GUILD"]) if env.get("QTUNE_DEV_GUILD") else None
    bot = FloorBot(dev_guild, float(env.get("QTUNE_GUILD_READY_TIMEOUT", "2")))
    journal = Journal(env["QTUNE_DB"]) if "--durable" in sys.argv[1:] else None
    if journal is not None:
        bot.tables = Tables(journal)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runner = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await bot.close()
    stopping.cancel()
    if journal is not None:
        journal.close()
    if runner.done() and not runner.cancelled() and runner.exception() is not None:
        print(f"floor bot failed: {runner.exception()!r}", file=sys.stderr)
        return 1
    return 0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed, as ``bot.app.runner.event_loop_factory`` picks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        sys.exit(runner.run(main()))
