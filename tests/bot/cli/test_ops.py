"""Operator CLI: ``qtable`` (text and JSON, also while the bot holds the database) and
the ``run`` front door's error handling."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.cli import ops as cli_ops
from bot.config import Settings, open_service

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "MTIzNDU2Nzg5.cli-secret-token.XYZ"
pytestmark = pytest.mark.timeout(90)
SEED = Settings(learner="seed")


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", QTUNE_DB=str(tmp_path / "q.db"))
    env["QTUNE_LEARNER"] = "seed"  # the exact TD values below are the seed rule's
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_register_adds_the_three_subcommands():
    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers(dest="command")
    cli_ops.register(subs)
    for argv in (["run"], ["qtable", "5", "--json"], ["console", "--user-id", "3"]):
        args = parser.parse_args(argv)
        assert callable(args.func)
    assert parser.parse_args(["qtable", "5"]).json is False
    with pytest.raises(SystemExit):
        parser.parse_args(["qtable", "abc"])
    with pytest.raises(SystemExit):
        parser.parse_args(["qtable", "0"])


async def seed_user(db: Path, user_id: int) -> tuple[str, str]:
    """One /nowplaying + 👍 through the real service; returns (state, suggested)."""
    service, storage = await open_service(SEED, db)
    try:
        suggestion = await service.recommend(user_id, "Rock")
        await service.record(10_001, suggestion, 1, 2)
        result = await service.feedback(10_001, user_id, True)
        assert result.applied
        return suggestion.state, suggestion.action
    finally:
        await storage.close()


async def test_qtable_json_while_the_database_is_open(tmp_path):
    db = tmp_path / "q.db"
    state, action = await seed_user(db, 4242)
    # Keep a second connection open, as the running bot would.
    service, storage = await open_service(SEED, db)
    try:
        suggestion = await service.recommend(4242, "Jazz")
        await service.record(10_002, suggestion, 1, 2)
        proc = cli(tmp_path, "qtable", "4242", "--json")
    finally:
        await storage.close()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {
        "user_id",
        "genres",
        "q_table",
        "epsilon",
        "rewards",
        "current_genre",
        "learned",
    }
    assert data["user_id"] == 4242
    assert data["genres"] == ["Pop", "Rock", "Jazz", "Classical", "HipHop"]
    q = np.array(data["q_table"])
    assert q.shape == (5, 5)
    g = data["genres"]
    assert q[g.index(state), g.index(action)] == pytest.approx(1.0)
    assert np.count_nonzero(q) == 1
    assert data["epsilon"] == pytest.approx(0.995)
    assert data["rewards"] == 1
    assert data["current_genre"] == "Jazz"  # the last /nowplaying set it


async def test_qtable_text(tmp_path):
    db = tmp_path / "q.db"
    state, _ = await seed_user(db, 7)
    proc = cli(tmp_path, "qtable", "7")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "User 7" in out
    assert "ε = 0.995" in out
    assert "1 reward applied" in out
    row = next(line for line in out.splitlines() if line.startswith(state + " "))
    assert "1.00*" in row


@pytest.mark.parametrize("learner", ["seed", "dyna"])
async def test_qtable_for_a_user_with_no_data_says_so(tmp_path, learner):
    """Not a table of starting values (70.00 everywhere under dyna) with a "policy"."""
    db = tmp_path / "q.db"
    await seed_user(db, 7)  # the database exists and holds someone else
    proc = cli(tmp_path, "qtable", "2", QTUNE_LEARNER=learner)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("User 2 · no data yet")
    assert proc.stdout.count("\n") == 1
    assert "70.00" not in proc.stdout
    assert "policy" not in proc.stdout
    doc = json.loads(cli(tmp_path, "qtable", "2", "--json", QTUNE_LEARNER=learner).stdout)
    assert doc["learned"] is False
    assert json.loads(cli(tmp_path, "qtable", "7", "--json").stdout)["learned"] is True


def test_qtable_without_database_is_one_line_exit_2(tmp_path):
    proc = cli(tmp_path, "qtable", "7")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no database" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "q.db").exists()  # a read command creates nothing


def test_qtable_bad_user_id_exit_2(tmp_path):
    proc = cli(tmp_path, "qtable", "not-a-number")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": TOKEN, "DISCORD_API_BASE": "discord.com/api"}, "DISCORD_API_BASE"),
        (
            {"DISCORD_TOKEN": TOKEN, "DISCORD_GATEWAY_URL": f"http://{TOKEN}/"},
            "DISCORD_GATEWAY_URL",
        ),
        ({"DISCORD_TOKEN": TOKEN, "QTUNE_ALPHA": "7"}, "QTUNE_ALPHA"),
    ],
)
def test_run_with_bad_config_is_one_line_exit_2(tmp_path, env, variable):
    argv = [] if variable == "DISCORD_TOKEN" else ["run"]  # `python -m bot` is `... run`
    proc = cli(tmp_path, *argv, **env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert variable in lines[0]
    assert "Traceback" not in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout


def test_run_reads_dotenv_from_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("QTUNE_GAMMA=5\n", encoding="utf-8")
    proc = cli(tmp_path, "run", DISCORD_TOKEN=TOKEN)
    assert proc.returncode == 2
    assert "QTUNE_GAMMA" in proc.stderr


async def test_qtable_and_console_read_a_postgresql_database(tmp_path, pg_url):
    state, action = await seed_user(pg_url, 4242)  # type: ignore[arg-type]
    proc = cli(tmp_path, "qtable", "4242", "--json", QTUNE_DB=pg_url)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    g = data["genres"]
    assert data["q_table"][g.index(state)][g.index(action)] == pytest.approx(1.0)
    assert data["rewards"] == 1
    console = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "console", "--user-id", "4242", "--db", pg_url],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        input="table\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert console.returncode == 0, console.stderr
    assert "1 reward applied" in console.stdout


def test_qtable_on_an_unreachable_postgresql_is_one_line_exit_2(tmp_path):
    proc = cli(tmp_path, "qtable", "1", QTUNE_DB="postgresql://u:pw@127.0.0.1:1/qtune")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "cannot connect to PostgreSQL" in proc.stderr
    assert "pw" not in proc.stderr
