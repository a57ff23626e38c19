"""The CLI behaves like a Unix tool: a closed pipe ends quietly, ``--help`` names each default,
``compare`` compares something by default, and log lines carry no colour codes in a pipe."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import build_parser, main
from bot.cli.pipes import EXIT_BROKEN_PIPE
from bot.engine.learners import DEFAULT_LEARNER

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", QTUNE_DB=str(tmp_path / "q.db"))
    return env


def closed_pipe_run(
    tmp_path: Path, argv: list[str], stdin: str = "", module: list[str] | None = None
) -> tuple[int, str]:
    """Run ``python -m bot ARGV`` with its stdout a pipe whose reader is already gone.

    Closing the read end before the child writes makes every write fail with EPIPE, so the
    "1 run in 3" race of ``| head -1`` becomes certain.
    """
    proc = subprocess.Popen(
        [sys.executable, *(module or ["-m", "bot"]), *argv],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(stdin.encode(), timeout=90)
    return proc.returncode, err.decode()


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (["simulate", "--episodes", "300", "--seed", "1"], ""),
        (["simulate", "--episodes", "300", "--seed", "1", "--json"], ""),
        (["compare", "--episodes", "30", "--seeds", "3", "--user", "pop_lover"], ""),
        (["console", "--db", "c.db"], "rock\ny\ntable\n"),
        (["--help"], ""),
    ],
)
def test_a_closed_pipe_ends_quietly(tmp_path: Path, argv: list[str], stdin: str) -> None:
    code, err = closed_pipe_run(tmp_path, argv, stdin)
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert err == ""
    assert code in (0, EXIT_BROKEN_PIPE)


def test_make_docs_ends_quietly_on_a_closed_pipe(tmp_path: Path) -> None:
    """``make_docs.py --check`` reports a stale block on stdout; a closed pipe ends it quietly."""
    readme = tmp_path / "R.md"
    readme.write_text(
        "```console\n$ uv run python -m bot simulate --episodes 20 --seed 1\nold\n```\n"
    )
    script = [str(ROOT / "docs" / "make_docs.py")]
    code, err = closed_pipe_run(tmp_path, ["--check", "--readme", str(readme)], module=script)
    assert err == ""
    assert code == EXIT_BROKEN_PIPE


def test_head_dash_1_in_a_real_shell_pipeline(tmp_path: Path) -> None:
    """The issue's own command, through sh: only the first line, nothing on stderr."""
    command = f"{sys.executable} -m bot simulate --episodes 300 --seed 3 | head -1"
    for _ in range(3):
        proc = subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert proc.stdout.startswith("simulate · user generic")
        assert proc.stdout.count("\n") == 1
        assert proc.stderr == ""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("command", ["simulate", "compare", "qtable", "console", "run"])
def test_help_names_every_default(command: str, capsys) -> None:
    sub = _subparsers(build_parser())[command]
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for action in sub._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._HelpAction | argparse._StoreTrueAction):
            continue  # an off switch has no default worth naming
        help_text = " ".join(sub._get_formatter()._expand_help(action).split())
        assert "default" in help_text, f"{command} {action.option_strings}: {help_text}"
        assert help_text in text
        if action.default not in (None, False):
            assert str(action.default) in help_text or "default:" in help_text


def test_compare_without_learner_compares_seed_with_the_default(capsys) -> None:
    code = main(["compare", "--user", "pop_lover", "--episodes", "30", "--seeds", "2", "--json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)["results"]
    learners = [r["learner"] for r in results]
    assert learners == list(dict.fromkeys(["seed", DEFAULT_LEARNER]))
    assert len(learners) >= 2 or DEFAULT_LEARNER == "seed"


LOG_SCRIPT = """
import logging
from bot.app.logs import configure_logging
from bot.config import Settings
configure_logging(Settings())
logging.getLogger("qtune.test").warning("hello from the log")
"""


def test_log_lines_have_no_colour_codes_in_a_pipe(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hello from the log" in proc.stderr
    assert "WARNING" in proc.stderr
    assert "\x1b[" not in proc.stderr


def test_log_lines_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    """The other side of the choice: a real terminal still gets discord.py's colours."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", LOG_SCRIPT],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        proc.wait(timeout=60)
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert "hello from the log" in text
    assert "\x1b[" in text
