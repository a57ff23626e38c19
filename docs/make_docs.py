"""Every output and picture the README quotes, made by one script and reproducible by seed.

The README quotes commands in ``console`` code blocks: a ``$ command`` line, then what it
prints. This script runs each of those commands the way a reader would (a fresh database,
no settings from the outside, the bot's random choices seeded through ``QTUNE_SEED``) and
either rewrites the blocks with what they print today or checks that they still match.
Same seed, same bytes of output; the pictures are the same up to matplotlib's version.

    uv run python docs/make_docs.py            # rewrite the README's outputs and the pictures
    uv run python docs/make_docs.py --check    # exit 1 if any quoted output is out of date
    uv run python docs/make_docs.py qtable-discord --reactions 40 --seed 1   # one picture

``qtable-discord`` drives the real bot through the loopback fake Discord: a simulated
pop_lover says what they are playing, reacts 👍 on +10 and 👎 on −5 (and ignores the +1
"brief listen"), ``--reactions`` times; then ``/qtable``'s reply is printed and its PNG saved.
Each reaction is waited for until its reward is stored, so the next suggestion always
sees it: that, and the seed, is what makes the run the same every time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOC_SEED = "2026"
"""``QTUNE_SEED`` for every quoted command: the bot's own choices replay exactly."""
COLUMNS = "100"
"""Terminal width for argparse's ``--help`` and anything else that asks."""
PROMPTS = ("genre > ", "like it? [y/n] > ")
"""The console's prompts: in a quoted session, what follows one on its line was typed."""
BLOCK = re.compile(r"^(?P<fence>`{3,})console\n(?P<body>.*?)^(?P=fence)$", re.S | re.M)
"""A ``console`` fence; an output that holds a ``` fence itself is quoted in a longer one."""
LISTENER = 420_000_000_000_000_001


# ------------------------------------------------------------------------ quoted commands


@dataclass(frozen=True)
class Quote:
    """One ``console`` block: the command, what the README says it prints, where it is."""

    command: str
    expected: str
    start: int  # offset of the block body in the README
    end: int

    @property
    def typed(self) -> list[str]:
        """The lines typed at the console's prompts, in order (for a console session)."""
        out = []
        for line in self.expected.splitlines():
            for prompt in PROMPTS:
                if line.startswith(prompt) or line == prompt.rstrip():  # Enter alone
                    out.append(line[len(prompt) :])
        return out


def parse_block(body: str) -> tuple[str, str]:
    """``$ command`` on the first line, the output after it."""
    first, _, rest = body.partition("\n")
    if not first.startswith("$ "):
        raise ValueError(f"a console block starts with '$ command', got {first!r}")
    return first[2:].strip(), rest


def quotes(text: str) -> Iterator[Quote]:
    for match in BLOCK.finditer(text):
        command, expected = parse_block(match["body"])
        yield Quote(command, expected, match.start("body"), match.end("body"))


def environment() -> dict[str, str]:
    """A reader's shell: nothing from DISCORD_/QTUNE_, headless charts, a fixed seed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "QTUNE_"))}
    env.update(MPLBACKEND="Agg", QTUNE_SEED=DOC_SEED, COLUMNS=COLUMNS, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _argv(command: str) -> list[str]:
    """``uv run python …`` becomes this interpreter: the environment is already synced."""
    words = shlex.split(command)
    if words[:3] != ["uv", "run", "python"]:
        raise ValueError(f"quoted commands start with 'uv run python', got {command!r}")
    return [sys.executable, *words[3:]]


def _swap_paths(argv: list[str], scratch: Path) -> tuple[list[str], dict[str, str]]:
    """Point ``--db`` at a fresh file and, when only checking, ``--plot``/``--out`` at
    scratch files; returns the new argv and {scratch path: quoted path} for the output."""
    out, back = list(argv), {}
    for i, word in enumerate(out[:-1]):
        if word in ("--db", "--plot", "--out"):
            quoted = out[i + 1]
            real = scratch / f"{len(back)}-{Path(quoted).name}"
            out[i + 1] = str(real)
            back[str(real)] = quoted
    return out, back


def run_quote(quote: Quote, write_files: bool = False, made: dict[str, bytes] | None = None) -> str:
    """What the quoted command prints today, exactly as the README should show it.

    A console session gets the lines typed at its prompts as input, and the transcript
    shows them after the prompts, as a terminal does. Files the command writes under
    ``docs/`` are copied there with ``write_files``, and put in ``made`` (by their quoted
    path) when it is given.
    """
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        argv, back = _swap_paths(_argv(quote.command), scratch)
        typed = quote.typed
        proc = subprocess.run(
            argv,
            input="".join(f"{line}\n" for line in typed),
            cwd=REPO,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{quote.command!r} exited {proc.returncode}:\n{proc.stderr}")
        text = _echo_typed(proc.stdout, typed) if typed else proc.stdout
        # No trailing blanks (editors strip them; "genre > " then Enter is "genre >").
        text = "\n".join(line.rstrip() for line in text.split("\n"))
        for real, quoted in back.items():
            text = text.replace(real, quoted)
            if Path(real).exists() and quoted.startswith("docs/"):
                if made is not None:
                    made[quoted] = Path(real).read_bytes()
                if write_files:
                    (REPO / quoted).write_bytes(Path(real).read_bytes())
    return text


def _echo_typed(output: str, typed: list[str]) -> str:
    """Put each typed line after the prompt that read it, ending the line as Enter did."""
    pattern = "(" + "|".join(re.escape(p) for p in PROMPTS) + ")"
    parts = re.split(pattern, output)
    lines = iter(typed)
    out = [parts[0]]
    for prompt, after in zip(parts[1::2], parts[2::2], strict=True):
        entered = next(lines, None)
        out.append(prompt + (f"{entered}\n" if entered is not None else ""))
        out.append(after)
    return "".join(out)


def refresh(text: str, check: bool) -> tuple[str, list[str]]:
    """The README with every block's output made fresh; and the commands that differed."""
    stale, pieces, last = [], [], 0
    for quote in quotes(text):
        fresh = run_quote(quote, write_files=not check)
        if fresh != quote.expected:
            stale.append(quote.command)
        pieces += [text[last : quote.start], f"$ {quote.command}\n", fresh]
        last = quote.end
    pieces.append(text[last:])
    return "".join(pieces), stale


# ------------------------------------------------------------- the /qtable picture (Discord)


async def qtable_discord(learner: str, reactions: int, seed: int) -> tuple[str, bytes]:
    """/qtable's reply and PNG after a simulated pop_lover answered ``reactions`` suggestions."""
    import numpy as np

    from bot.engine.listeners import REWARDS, resolve_user
    from tests.fakediscord import FakeDiscord
    from tests.harness import GENRES, THUMBS_DOWN, THUMBS_UP, bot_environment, running_bot
    from tests.harness import suggested as suggested_genre

    rng = np.random.default_rng(seed)
    probs = resolve_user("pop_lover").reward_probs(GENRES)
    async with FakeDiscord() as fake:
        with tempfile.TemporaryDirectory() as tmp:
            env = bot_environment(
                fake,
                Path(tmp) / "pictures.sqlite3",
                QTUNE_COOLDOWN="0",
                QTUNE_LEARNER=learner,
                QTUNE_SEED=str(seed),
            )
            async with running_bot(fake, env) as qb:
                current, rewarded = "Rock", 0
                for _ in range(reactions):
                    _, msg = await qb.nowplaying(LISTENER, current)
                    suggested = suggested_genre(msg.content)
                    s, a = GENRES.index(current), GENRES.index(suggested)
                    reward = rng.choice(REWARDS, p=probs[s, a])
                    if reward != REWARDS[1]:
                        emoji = THUMBS_UP if reward > 0 else THUMBS_DOWN
                        await fake.user_reacts(msg.id, LISTENER, emoji)
                        rewarded += 1
                        await _stored(qb, rewarded)
                    current = suggested if reward > 0 else GENRES[int(rng.integers(len(GENRES)))]
                inter = await fake.send_command("qtable", user_id=LISTENER)
                final = await fake.final_message(inter.id, within=60)
                return final.content, final.attachments[0].data


async def _stored(qb: object, count: int) -> None:
    """Wait until the listener's ``count``-th reward is in the table."""

    async def done() -> bool:
        return await qb.rewards(LISTENER) >= count  # type: ignore[attr-defined]

    await qb.eventually(done, within=30, what=f"reward {count} stored")  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- main


def _main_docs(check: bool, readme: Path = README) -> int:
    text = readme.read_text(encoding="utf-8")
    new, stale = refresh(text, check)
    if check:
        for command in stale:
            print(f"out of date: $ {command}")
        return 1 if stale else 0
    if new != text:
        readme.write_text(new, encoding="utf-8")
    print(f"{len(list(quotes(new)))} quoted outputs in {readme.name} are current")
    return 0


def _main_qtable(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make_docs.py qtable-discord")
    parser.add_argument("--out", default="docs/qtable_discord.png", help="PNG to write")
    parser.add_argument("--learner", default="dyna", help="QTUNE_LEARNER for the bot")
    parser.add_argument("--reactions", type=int, default=40, help="suggestions answered")
    parser.add_argument("--seed", type=int, default=1, help="listener's and bot's seed")
    args = parser.parse_args(argv)
    content, png = asyncio.run(qtable_discord(args.learner, args.reactions, args.seed))
    Path(args.out).write_bytes(png)
    print(content)
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["qtable-discord"]:
        return _main_qtable(args[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--readme", type=Path, default=README, help="the Markdown file")
    parsed = parser.parse_args(args)
    return _main_docs(parsed.check, parsed.readme)


if __name__ == "__main__":
    from bot.cli.pipes import quiet_broken_pipe

    sys.exit(quiet_broken_pipe(main)())
