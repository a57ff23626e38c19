"""The README's quoted outputs are what the commands print today.

Sybil (a maintained tool for testing the examples in documentation) finds the README's
``console`` code blocks and hands each to an evaluator; the evaluator runs the block's
``$ command`` the way ``docs/make_docs.py`` does (fresh database, ``QTUNE_SEED``, nothing
from the environment) and compares every byte. When this fails, ``uv run python
docs/make_docs.py`` rewrites the blocks and pictures; review the diff like any change.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from matplotlib.image import imread
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
pytestmark = pytest.mark.timeout(600)


def _load_make_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "docs" / "make_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_docs"] = module
    spec.loader.exec_module(module)
    return module


make_docs = _load_make_docs()


def evaluate(example: Example) -> str | None:
    """Sybil's evaluator: None when the block is current, else a diff-like message."""
    command, expected = make_docs.parse_block(example.parsed)
    quote = make_docs.Quote(command, expected, 0, 0)
    made: dict[str, bytes] = {}
    fresh = make_docs.run_quote(quote, made=made)
    if fresh == expected:
        return _stale_pictures(command, made)
    return (
        f"README line {example.line}: `{command}` prints something else today "
        f"(run `uv run python docs/make_docs.py`).\n--- README\n{expected}\n--- today\n{fresh}"
    )


def _stale_pictures(command: str, made: dict[str, bytes]) -> str | None:
    """Same seed, same picture: each committed PNG decodes to what the command draws today
    (pixels, not bytes, so a PNG encoder's metadata does not count)."""
    for quoted, data in made.items():
        today = imread(io.BytesIO(data), format="png")
        committed = imread(ROOT / quoted, format="png")
        if today.shape != committed.shape or not (today == committed).all():
            return f"{quoted} is not what `{command}` draws today: run docs/make_docs.py"
    return None


EXAMPLES = list(
    Sybil(parsers=[CodeBlockParser(language="console", evaluator=evaluate)]).parse(README)
)


def test_the_readme_quotes_commands() -> None:
    commands = [make_docs.parse_block(e.parsed)[0] for e in EXAMPLES]
    assert any(" console " in c for c in commands)
    assert any(" simulate " in c for c in commands)
    assert any(" compare " in c for c in commands)
    assert any("qtable-discord" in c for c in commands)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"README.md:{e.line}")
def test_quoted_output_is_what_the_command_prints(example: Example) -> None:
    example.evaluate()  # raises SybilFailure with the message above when stale


def test_every_picture_in_the_readme_is_made_by_a_quoted_command() -> None:
    text = README.read_text(encoding="utf-8")
    pictures = set(re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", text))
    made = {
        word
        for e in EXAMPLES
        for word in make_docs.parse_block(e.parsed)[0].split()
        if word.endswith(".png")
    }
    assert pictures
    assert pictures <= made
    unused = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.png")} - pictures
    assert not unused, f"pictures in docs/ that the README does not show: {unused}"


def test_make_docs_rewrites_a_stale_block_and_check_then_passes(tmp_path: Path) -> None:
    """On a small Markdown file: --check fails, a run rewrites it, then --check passes."""
    readme = tmp_path / "R.md"
    command = "uv run python -m bot simulate --user pop_lover --episodes 20 --seed 1 --learner seed"
    readme.write_text(f"Intro.\n\n```console\n$ {command}\nstale output\n```\n\nOutro.\n")
    assert make_docs.main(["--check", "--readme", str(readme)]) == 1
    assert "stale output" in readme.read_text()  # --check writes nothing
    assert make_docs.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("Intro.\n\n```console\n$ ")
    assert text.endswith("```\n\nOutro.\n")
    assert "simulate · user pop_lover · learner seed · 20 steps · seed 1" in text
    assert make_docs.main(["--check", "--readme", str(readme)]) == 0
