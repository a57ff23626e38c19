"""``python -m bot evaluate`` on a database the console filled, its errors, and the
propensities the learners log (exact for ``seed``, estimated for ``dyna``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.engine.listeners import resolve_user
from bot.engine.training import run_chain

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", QTUNE_DB=str(tmp_path / "default.db"))
    return env


def bot(tmp_path: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        input=stdin,
        cwd=tmp_path,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_evaluate_works_on_a_database_the_console_filled(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    script = "pop\ny\n" * 12 + "rock\nn\n" * 8 + "jazz\ny\n" * 6 + "quit\n"
    filled = bot(tmp_path, "console", "--db", str(db), stdin=script)
    assert filled.returncode == 0, filled.stderr
    results = {}
    for policy in ("greedy", "uniform", "popular", "dyna", "seed"):
        proc = bot(tmp_path, "evaluate", "--db", str(db), "--policy", policy, "--json")
        assert proc.returncode == 0, proc.stderr
        results[policy] = json.loads(proc.stdout)
    for policy, r in results.items():
        assert r["logged"] == 26, policy  # every reaction, with its propensity
        assert 0 < r["effective_sample_size"] <= 26
        assert -5 - 1e-9 <= r["value"] <= 10 + 1e-9
        low, high = r["ci95"]
        assert low - 1e-9 <= r["value"] <= high + 1e-9
    # the logged policy itself (dyna on today's tables is close to it) covers the log mean
    assert -5 <= results["uniform"]["logged_mean_reward"] <= 10
    text = bot(tmp_path, "evaluate", "--db", str(db), "--policy", "uniform")
    assert text.returncode == 0
    assert "per suggestion (95 % interval" in text.stdout


def test_evaluate_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    for argv in (
        ["evaluate", "--db", str(tmp_path / "missing.db")],
        ["evaluate", "--db", str(tmp_path / "x.db"), "--policy", "best"],
    ):
        proc = bot(tmp_path, *argv)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def test_seed_propensities_are_the_epsilon_greedy_rule() -> None:
    learner = make_learner("seed")
    state = learner.initial_state(5)
    state.q[1] = [0.0, 3.0, 3.0, 1.0, 0.0]
    state.epsilon = 0.2
    p = learner.selection_probabilities(state, 1)
    np.testing.assert_allclose(p, [0.04, 0.44, 0.44, 0.04, 0.04])


def test_dyna_propensities_match_how_often_it_picks() -> None:
    learner = make_learner("dyna")
    log = run_chain(learner, resolve_user("jazz_enthusiast"), 15, np.random.default_rng(4))
    state = log.state
    rng = np.random.default_rng(5)
    n = 4000
    picks = np.bincount([learner.select(state, 2, rng) for _ in range(n)], minlength=5) / n
    p = learner.selection_probabilities(state, 2, rng, draws=4000)
    assert p.sum() == pytest.approx(1.0)
    assert np.abs(p - picks).max() < 4 * np.sqrt(0.25 / n) * np.sqrt(2)
    assert (p > 0).all()  # a logged pick never has propensity 0


def test_dyna_propensities_do_not_depend_on_the_cached_model() -> None:
    """They read the model select() caches; a cache made for another listener's counts
    (users interleave in the bot) must be replaced, not used: same draws, same answer."""
    learner = make_learner("dyna")
    mine = run_chain(learner, resolve_user("jazz_enthusiast"), 15, np.random.default_rng(4)).state
    other = run_chain(learner, resolve_user("pop_lover"), 30, np.random.default_rng(6)).state
    learner.select(other, 2, np.random.default_rng(7))  # caches the other listener's model
    after_other = learner.selection_probabilities(mine, 2, np.random.default_rng(8))
    fresh = make_learner("dyna").selection_probabilities(mine, 2, np.random.default_rng(8))
    np.testing.assert_array_equal(after_other, fresh)
