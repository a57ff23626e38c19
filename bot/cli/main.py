"""The command-line front door. Subcommands live in small modules that register themselves.

``bot.cli.experiments`` adds ``simulate`` and ``compare``; ``bot.cli.ops`` adds ``run``,
``qtable`` and ``console``. With no subcommand, ``run`` starts the bot.
Every expected error ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from bot.cli.pipes import quiet_broken_pipe
from bot.errors import QTuneError, StorageError

SUBCOMMAND_MODULES = (
    "bot.cli.ops",
    "bot.cli.experiments",
    "bot.cli.admin",
    "bot.cli.evaluate",
    "bot.cli.copydb",
)
DEFAULT_COMMAND = "run"


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` names each option's default; ``None`` and off-switches say nothing,
    and a help text that already mentions its default is left as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we want a single clear line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bot", description="qtune: a Q-learning genre recommender")
    subs = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subs)
    return parser


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_in or (args_in[0].startswith("-") and args_in[0] not in ("-h", "--help")):
        args_in.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(args_in)
    try:
        return int(args.func(args) or 0)
    except (QTuneError, StorageError) as exc:  # a bad database at open time, too
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
