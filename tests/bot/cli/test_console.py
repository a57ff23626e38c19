"""The offline console, driven as a real subprocess: over a stdin pipe and over a pty."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(90)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No token, no QTUNE_* from the outside, headless charts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", QTUNE_DB=str(tmp_path / "default.db"))
    env["QTUNE_LEARNER"] = "seed"  # the exact TD values below are the seed rule's
    return env


def console_in_pty(tmp_path: Path, db: Path, *, term: str) -> tuple[subprocess.Popen, int]:
    """``python -m bot console`` on a real pseudo-terminal; returns the process and our end."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "console", "--db", str(db)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=tmp_path,
        env={**clean_env(tmp_path), "TERM": term},
        close_fds=True,
    )
    os.close(follower)
    return proc, leader


def console(tmp_path: Path, db: Path, script: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", str(db), *extra],
        input=script,
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def qtable_json(tmp_path: Path, db: Path, user_id: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "qtable", str(user_id), "--json", "--db", str(db)],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_console_learns_from_a_like(tmp_path):
    db = tmp_path / "try.db"
    proc = console(tmp_path, db, "rock\ny\ntable\nquit\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    match = re.search(r"You're on Rock: try (\w+) next", out)
    assert match, out
    suggested = match.group(1)
    # The same reason line as /nowplaying, in words (no bare ε).
    assert "(A first guess: you haven't rated any suggestion yet.)" in out
    # Fresh table, seed defaults, reward +10: Q = 0.1 * (10 + 0.9 * 0 - 0) = 1.0
    assert f"Q[Rock → {suggested}] is now 1.00" in out
    assert "reward +10" in out
    assert "ε = 0.995" in out
    table_lines = [line for line in out.splitlines() if line.startswith("Rock ")]
    assert table_lines, out
    assert "1.00*" in table_lines[-1]  # the liked genre is now the best from Rock
    assert "Bye" in out

    # The same database, read by the operator CLI: the console's listener is user 1.
    data = qtable_json(tmp_path, db, 1)
    genres = data["genres"]
    assert data["rewards"] == 1
    assert data["epsilon"] == pytest.approx(0.995)
    assert data["current_genre"] == suggested  # a like moves the listener on
    assert data["q_table"][genres.index("Rock")][genres.index(suggested)] == pytest.approx(1.0)


def test_console_dislike_enter_and_bad_input(tmp_path):
    db = tmp_path / "try.db"
    script = "\n".join(
        [
            "n",  # nothing to rate yet
            "polka",  # unknown genre
            "HIP HOP",  # alias, any case
            "maybe",  # neither y/n nor a genre
            "n",
            "",  # Enter: a new suggestion from the current genre
            "y",
            "genres",
            "help",
        ]
    )
    proc = console(tmp_path, db, script + "\n", "--user-id", "77")  # ends with EOF
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Nothing to rate yet" in out
    assert "polka" in out
    assert "You're on HipHop: try" in out
    assert "maybe" in out  # the bad input is named in a one-line message
    assert "reward -5" in out
    assert out.count("try ") >= 2
    assert "Pop, Rock, Jazz, Classical, HipHop" in out
    assert "table" in out
    assert "Traceback" not in proc.stderr
    data = qtable_json(tmp_path, db, 77)
    assert data["rewards"] == 2


def read_until(fd: int, pattern: str, timeout: float = 30.0) -> str:
    buf = b""
    deadline = time.monotonic() + timeout
    while pattern.encode() not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {pattern!r}; got:\n{buf.decode()}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace")


def test_console_in_a_real_terminal(tmp_path):
    db = tmp_path / "tty.db"
    proc, leader = console_in_pty(tmp_path, db, term="dumb")
    try:
        assert "genre >" in read_until(leader, "genre >")
        os.write(leader, b"jazz\n")
        text = read_until(leader, "[y/n]")
        assert "You're on Jazz" in text
        os.write(leader, b"y\n")
        text = read_until(leader, "genre >")
        assert "is now 1.00" in text
        os.write(leader, b"\x04")  # Ctrl-D ends the session
        read_until(leader, "Bye")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


def test_the_yes_no_prompt_asks_again_and_keeps_the_suggestion(tmp_path):
    """At ``like it? [y/n]`` anything but y/n is refused; the suggestion waits for its answer."""
    db = tmp_path / "yn.db"
    proc = console(tmp_path, db, "rock\nmaybe\njazz\n\ny\nquit\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    suggested = re.search(r"You're on Rock: try (\w+) next", out).group(1)
    assert out.count("You're on") == 2  # the one suggestion, then "You're on X" after 👍
    assert "Unknown genre" not in out
    assert out.count("Please answer y or n") == 3  # maybe, a genre, an empty line
    assert "'maybe' is not an answer" in out
    assert "'jazz' is not an answer" in out
    assert f"Q[Rock → {suggested}] is now 1.00" in out  # the kept suggestion got the 👍
    data = qtable_json(tmp_path, db, 1)
    assert data["rewards"] == 1
    assert data["current_genre"] == suggested


def test_console_has_its_own_default_database(tmp_path):
    """Without --db the console writes data/console.sqlite3, never the bot's QTUNE_DB."""
    env = clean_env(tmp_path)
    bot_db = Path(env["QTUNE_DB"])
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input="pop\ny\nquit\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    own = tmp_path / "data" / "console.sqlite3"
    assert own.exists()
    assert "database data/console.sqlite3" in proc.stdout
    assert not bot_db.exists()
    assert qtable_json(tmp_path, own, 1)["rewards"] == 1


def test_arrow_keys_recall_history_at_the_prompt(tmp_path):
    """readline is on in a terminal: ↑ brings back the last line instead of printing ^[[A."""
    import readline  # noqa: F401  (Linux always has it; its absence must fail, not skip)

    db = tmp_path / "history.db"
    proc, leader = console_in_pty(tmp_path, db, term="xterm")
    try:
        read_until(leader, "genre >")
        os.write(leader, b"jazz\n")
        read_until(leader, "[y/n]")
        os.write(leader, b"\x1b[A\n")  # up arrow, Enter: the history's "jazz" again
        text = read_until(leader, "is not an answer")
        assert "'jazz' is not an answer" in text
        assert "^[[A" not in text
        os.write(leader, b"y\n")
        read_until(leader, "is now")
        os.write(leader, b"quit\n")
        read_until(leader, "Bye")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
