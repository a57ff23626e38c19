"""``python -m bot console``: the recommender in a terminal, without Discord or a token.

It goes through the same service and database as the bot, so what you teach it here is
what the bot knows about listener ``--user-id``. Type a genre, get a suggestion, answer
``y`` or ``n`` (the like and dislike rewards), type ``table`` to watch the Q-table change.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings, open_service
from bot.errors import QTuneError
from bot.render.text import format_q_table, table_summary
from storage.factory import describe

CONSOLE_USER_ID = 1
CONSOLE_DB = "data/console.sqlite3"
"""The console's own database: trying the recommender never writes into the bot's data."""
HISTORY_LENGTH = 500
YES = {"y", "yes", "like", "+", "👍"}
NO = {"n", "no", "dislike", "-", "👎"}
QUIT = {"quit", "exit", "q", ":q"}
HELP = """\
  <genre>   the genre you're listening to; I suggest what to play next
  y / n     like or dislike my last suggestion (that is the reward I learn from)
  <Enter>   a new suggestion from the genre you're on now
  table     the Q-table (rows: your genre now, columns: my suggestion, * = best)
  genres    the genres I know
  quit      leave (Ctrl-D works too)"""


class Console:
    """The REPL's state and rules of conversation; I/O is the caller's."""

    def __init__(self, service: Any, user_id: int, out: TextIO) -> None:
        self.service = service
        self.user_id = user_id
        self.out = out
        self.pending: Any = None  # the Suggestion waiting for y/n
        self.pending_id: int | None = None
        self.current: str | None = None
        # Negative ids can never collide with a Discord message id (always positive).
        base = time.time_ns() // 1000
        self._ids = (-(base + i) for i in itertools.count())

    @property
    def prompt(self) -> str:
        return "like it? [y/n] > " if self.pending is not None else "genre > "

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def greet(self, where: str) -> None:
        view = await self.service.table(self.user_id)
        self.current = view.current_genre
        self.say(f"qtune console · listener {self.user_id} · database {where}")
        self.say(f"{table_summary(view)}")
        self.say(f"Genres: {', '.join(self.service.genres)}")
        self.say("Type the genre you're listening to and I'll suggest what's next.")
        self.say("Then answer y or n. Also: table, genres, help, quit.")

    async def handle(self, line: str) -> bool:
        """Act on one line of input; False means leave."""
        text = line.strip()
        word = text.casefold()
        try:
            if word in QUIT:
                return False
            if word in ("help", "?", "h"):
                self.say(HELP)
            elif word == "table":
                await self.show_table()
            elif word == "genres":
                self.say(f"Genres: {', '.join(self.service.genres)}")
            elif word in YES or word in NO:
                await self.answer(word in YES)
            elif self.pending is not None:
                # Anything else would drop the suggestion unrated: ask again, keep it.
                shown = f" ({text!r} is not an answer)" if text else ""
                self.say(f"Please answer y or n{shown}: do you like {self.pending.action}?")
            elif not text:
                if self.current:
                    await self.suggest(self.current)
                else:
                    self.say("Type a genre to start, e.g. rock. 'help' lists commands.")
            else:
                await self.suggest(text)
        except QTuneError as exc:
            self.say(str(exc))
        return True

    async def suggest(self, text: str) -> None:
        genre = self.service.parse_genre(text)
        suggestion = await self.service.recommend(self.user_id, genre)
        message_id = next(self._ids)
        await self.service.record(message_id, suggestion, None, None)
        self.pending, self.pending_id = suggestion, message_id
        self.current = suggestion.state
        self.say(f"You're on {suggestion.state}: try {suggestion.action} next. Like it?")
        if suggestion.reason:
            self.say(f"  ({suggestion.reason})")

    async def answer(self, liked: bool) -> None:
        if self.pending is None or self.pending_id is None:
            self.say("Nothing to rate yet: type a genre first.")
            return
        message_id = self.pending_id
        self.pending = self.pending_id = None
        result = await self.service.feedback(message_id, self.user_id, liked)
        if not result.applied:
            self.say(f"Not applied ({result.reason}).")
            return
        view = await self.service.table(self.user_id)
        genres = list(view.genres)
        q = view.q[genres.index(result.state), genres.index(result.action)]
        self.current = view.current_genre
        verdict = "👍 liked" if liked else "👎 disliked"
        self.say(
            f"{verdict}: reward {result.reward:+g}, Q[{result.state} → {result.action}] is now "
            f"{q:.2f} (TD error {result.td_error:+.2f}), ε = {result.epsilon:.3f}."
        )
        if self.current:
            self.say(f"You're on {self.current}. Press Enter for the next suggestion.")

    async def show_table(self) -> None:
        view = await self.service.table(self.user_id)
        self.say(format_q_table(view.genres, view.q, view.policy))
        self.say(table_summary(view))


def run_console(
    settings: Settings,
    *,
    db_path: Path | str | None = None,
    user_id: int = CONSOLE_USER_ID,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """The REPL loop. Reads lines until ``quit`` or end of input; returns the exit code."""
    inp = stdin or sys.stdin
    out = stdout or sys.stdout
    db_path = db_path or CONSOLE_DB
    where = describe(db_path)
    with asyncio.Runner() as runner:
        service, storage = runner.run(open_service(settings, db_path, cpu=False))
        try:
            console = Console(service, user_id, out)
            runner.run(console.greet(where))
            interactive = inp is sys.stdin and out is sys.stdout and inp.isatty()
            if interactive:
                _enable_line_editing()
            while True:
                line = _read_line(console.prompt, inp, out, interactive)
                if not line:  # end of input (Ctrl-D) or Ctrl-C
                    out.write("\n")
                    break
                if not runner.run(console.handle(line)):
                    break
            console.say("Bye! Everything you taught me is saved.")
        finally:
            runner.run(storage.close())
    return 0


def _enable_line_editing() -> bool:
    """Arrow keys, line editing and history at the prompts, where the platform has readline.

    Importing :mod:`readline` is what makes :func:`input` use it; without it a terminal
    echoes ``^[[A`` for the up arrow. History lasts for the session (nothing is written to
    the home folder).
    """
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline: plain input() still works
        return False
    readline.set_history_length(HISTORY_LENGTH)
    return True


def _read_line(prompt: str, inp: TextIO, out: TextIO, interactive: bool) -> str:
    """One line with its newline, or "" at end of input or Ctrl-C."""
    try:
        if interactive:  # input() gives line editing in a real terminal
            return input(prompt) + "\n"
        out.write(prompt)
        out.flush()
        return inp.readline()
    except (EOFError, KeyboardInterrupt):
        return ""
