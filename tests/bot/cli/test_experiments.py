"""``simulate`` and ``compare``: JSON shape, text output, reproducibility, exit codes,
the pop_lover result against V* (value iteration), and the compare metrics."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.cli.experiments import ProgressBar, run_metrics
from bot.cli.main import main
from bot.engine.learners import DEFAULT_LEARNER
from bot.engine.listeners import BUILTIN_PROFILES, optimal_q, resolve_user

ROOT = Path(__file__).resolve().parents[3]
SIM_KEYS = {
    "genres",
    "q_table",
    "policy",
    "mean_reward",
    "mean_reward_last_100",
    "epsilon_final",
    "episodes",
    "seed",
    "user",
    "params",
    "action_counts",
    "action_counts_last_100",
    "learner",
    "explored_share",
}
RESULT_KEYS = {
    "user",
    "learner",
    "mean_reward_last_100",
    "best_share_last_100",
    "regret",
    "neg_rate_first_20",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def exit_code(argv: list[str]) -> int | str | None:
    """main()'s return value, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def sim_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "simulate", "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_simulate_json_has_every_key(capsys) -> None:
    doc = sim_json(capsys, "--user", "pop_lover", "--episodes", "300", "--seed", "3")
    assert doc.keys() >= SIM_KEYS
    assert doc["genres"] == ["Pop", "Rock", "Jazz", "Classical", "HipHop"]
    assert np.array(doc["q_table"]).shape == (5, 5)
    assert set(doc["policy"]) == set(doc["genres"])
    assert set(doc["policy"].values()) <= set(doc["genres"])
    assert doc["episodes"] == 300
    assert doc["seed"] == 3
    assert doc["learner"] == DEFAULT_LEARNER
    assert doc["user"] == {"name": "pop_lover", "preferences": BUILTIN_PROFILES["pop_lover"]}
    assert doc["params"] == {"gamma": 0.9}  # dyna has no α and no ε schedule
    seed_doc = sim_json(capsys, "--episodes", "30", "--seed", "3", "--learner", "seed")
    assert seed_doc["params"] == {
        "alpha": 0.1,
        "gamma": 0.9,
        "epsilon": 1.0,
        "epsilon_decay": 0.995,
        "epsilon_min": 0.1,
    }
    assert seed_doc["explored_share"] is None  # its exploration is its ε
    assert 0.0 <= doc["explored_share"] <= 1.0
    assert sum(doc["action_counts"].values()) == 300
    assert sum(doc["action_counts_last_100"].values()) == 100
    assert -5.0 <= doc["mean_reward_last_100"] <= 10.0


def test_simulate_json_policy_is_the_row_argmax(capsys) -> None:
    doc = sim_json(
        capsys, "--user", "rock_fan", "--episodes", "400", "--seed", "2", "--learner", "seed"
    )
    q = np.array(doc["q_table"])
    for i, genre in enumerate(doc["genres"]):
        assert q[i, doc["genres"].index(doc["policy"][genre])] == q[i].max()
    assert doc["epsilon_final"] == pytest.approx(max(0.1, 0.995**400))


def test_simulate_generic_user_and_params(capsys) -> None:
    doc = sim_json(
        capsys, "--episodes", "50", "--seed", "1", "--alpha", "0.5", "--gamma", "0",
        "--epsilon", "0.3", "--epsilon-decay", "1", "--epsilon-min", "0", "--learner", "seed",
    )  # fmt: skip
    assert doc["user"] == {"name": "generic", "preferences": "generic"}
    assert doc["params"]["alpha"] == 0.5
    assert doc["epsilon_final"] == 0.3


@pytest.mark.parametrize("learner", ["seed", DEFAULT_LEARNER])
def test_simulate_is_reproducible_by_seed(capsys, learner: str) -> None:
    args = ("--user", "jazz_enthusiast", "--episodes", "200", "--learner", learner)
    a = sim_json(capsys, *args, "--seed", "5")
    b = sim_json(capsys, *args, "--seed", "5")
    c = sim_json(capsys, *args, "--seed", "6")
    assert a == b
    assert a["q_table"] != c["q_table"]


def test_simulate_without_seed_reports_the_one_it_used(capsys) -> None:
    a = sim_json(capsys, "--episodes", "100", "--learner", "seed")
    b = sim_json(capsys, "--episodes", "100", "--learner", "seed", "--seed", str(a["seed"]))
    assert a == b


def test_simulate_text_output(capsys) -> None:
    code, out, err = run(
        capsys, "simulate", "--user", "pop_lover", "--episodes", "500", "--seed", "7",
        "--learner", "seed",
    )  # fmt: skip
    assert code == 0
    assert err == ""
    assert "mean reward:" in out
    assert "overall" in out
    assert "last 100" in out
    assert "Pop→" in out
    assert "HipHop→" in out
    table = out.splitlines()[-6:]
    assert table[0].split()[-5:] == ["Pop", "Rock", "Jazz", "Classical", "HipHop"]
    header_ends = [m.end() for m in re.finditer(r"\S+", table[0])][-5:]
    for row in table[1:]:
        number_ends = [m.end() for m in re.finditer(r"-?\d+\.\d\d", row)]
        assert number_ends == [end - 1 for end in header_ends], table  # right-aligned columns
    assert sum(line.count("*") for line in table[1:]) == 5


def test_simulate_profile_file_and_plot(capsys, tmp_path: Path) -> None:
    profile = tmp_path / "owl.toml"
    profile.write_text('name = "night_owl"\n[preferences]\nJazz = 0.9\n')
    plot = tmp_path / "run.png"
    doc = sim_json(
        capsys, "--user", str(profile), "--episodes", "200", "--seed", "1", "--plot", str(plot)
    )
    assert doc["user"]["name"] == "night_owl"
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_pop_lover_50000_steps_learns_pop_near_v_star(capsys) -> None:
    """The issue's acceptance run, with V* from value iteration on the reward model."""
    doc = sim_json(
        capsys, "--user", "pop_lover", "--episodes", "50000", "--seed", "1", "--learner", "seed"
    )
    user = resolve_user("pop_lover")
    v_star = optimal_q(user.expected_rewards(doc["genres"]), doc["params"]["gamma"]).max(axis=1)
    q = np.array(doc["q_table"])
    assert doc["policy"]["Pop"] == "Pop"
    assert sum(best == "Pop" for best in doc["policy"].values()) >= 3
    np.testing.assert_allclose(q.max(axis=1), v_star, rtol=0.10)


BAD_SIMULATE = [
    (["--episodes", "-5"], "episodes"),
    (["--episodes", "0"], "episodes"),
    (["--episodes", "ten"], "episodes"),
    (["--episodes", "99999999999"], "episodes"),
    (["--user", "nobody"], "unknown user 'nobody'"),
    (["--alpha", "0", "--learner", "seed"], "alpha"),
    (["--alpha", "1.5", "--learner", "seed"], "alpha"),
    (["--alpha", "x"], "alpha"),
    (["--gamma", "1"], "gamma"),
    (["--alpha", "0.5"], "--alpha is a setting of seed, not of dyna"),
    (["--epsilon-min", "0.2"], "--epsilon-min is a setting of seed"),
    (["--epsilon", "-0.1", "--learner", "seed"], "epsilon"),
    (["--epsilon-min", "2", "--learner", "seed"], "epsilon_min"),
    (["--epsilon-decay", "0", "--learner", "seed"], "epsilon_decay"),
    (["--learner", "nope"], "unknown learner 'nope'"),
    (["--genres", "Pop"], "at least 2 genres"),
    (["--genres", "Pop,Rock,pop"], "duplicate"),
    (["--seed", "-1"], "seed"),
    (["--plot", "/no/such/dir/x.png"], "does not exist"),
    (["--plot", "figure.jpg"], ".png"),
    (["--user", "/no/such/profile.toml"], "cannot read"),
    (["--bogus"], "unrecognized"),
]


@pytest.mark.parametrize(("argv", "needle"), BAD_SIMULATE)
def test_simulate_bad_arguments_exit_2_with_one_line(capsys, argv: list[str], needle: str) -> None:
    assert exit_code(["simulate", "--episodes", "10", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "x"\n[preferences]\nPolka = 0.5\n', "unknown genre"),
        ('name = "x"\n[preferences]\nPop = 3\n', "must be in [0, 1]"),
        ('name = "x"\n[preferences\n', "malformed"),
        ("[preferences]\nPop = 0.5\n", "name"),
    ],
)
def test_bad_profile_files_exit_2(capsys, tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "p.toml"
    f.write_text(text)
    code, out, err = run(capsys, "simulate", "--user", str(f), "--episodes", "10")
    assert code == 2
    assert out == ""
    assert needle in err
    assert err.count("\n") == 1


def compare_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "compare", "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_compare_json_shape_for_every_builtin(capsys) -> None:
    doc = compare_json(capsys, "--episodes", "150", "--seeds", "20", "--learner", "seed")
    assert doc["episodes"] == 150
    assert doc["seeds"] == 20
    assert [r["user"] for r in doc["results"]] == list(BUILTIN_PROFILES)
    for r in doc["results"]:
        assert r.keys() >= RESULT_KEYS
        assert r["learner"] == "seed"
        assert 0.0 <= r["best_share_last_100"] <= 1.0
        assert 0.0 <= r["neg_rate_first_20"] <= 1.0
        assert r["regret"] > 0


def test_compare_several_users_and_learners(capsys, tmp_path: Path) -> None:
    f = tmp_path / "owl.json"
    f.write_text(json.dumps({"name": "owl", "preferences": {"Jazz": 1.0}}))
    doc = compare_json(
        capsys, "--user", "generic", "--user", str(f), "--learner", "seed",
        "--learner", DEFAULT_LEARNER, "--episodes", "60", "--seeds", "5",
    )  # fmt: skip
    pairs = [(r["user"], r["learner"]) for r in doc["results"]]
    assert pairs == [
        ("generic", "seed"),
        ("generic", DEFAULT_LEARNER),
        ("owl", "seed"),
        ("owl", DEFAULT_LEARNER),
    ]
    generic = doc["results"][0]
    assert generic["regret"] == 0.0
    assert generic["best_share_last_100"] == 1.0


def test_compare_is_reproducible(capsys) -> None:
    args = ("--user", "rock_fan", "--episodes", "100", "--seeds", "10", "--learner", "seed")
    assert compare_json(capsys, *args) == compare_json(capsys, *args)
    assert compare_json(capsys, *args) != compare_json(capsys, *args, "--seed", "1")


def test_compare_text(capsys) -> None:
    code, out, _ = run(
        capsys, "compare", "--user", "pop_lover", "--episodes", "100", "--seeds", "5",
        "--learner", "seed",
    )  # fmt: skip
    assert code == 0
    assert "pop_lover" in out
    assert "regret" in out
    assert "±" in out


@pytest.mark.parametrize(
    "argv",
    [["--seeds", "0"], ["--episodes", "-1"], ["--user", "nobody"], ["--learner", "x"]],
)
def test_compare_bad_arguments(capsys, argv: list[str]) -> None:
    assert exit_code(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_run_metrics_by_hand() -> None:
    """Two genres, A pays 8 and B pays 2 in expectation; one run of 4 steps."""
    expected = np.array([[8.0, 2.0], [8.0, 2.0]])
    states = np.array([[0], [1], [1], [0]])
    actions = np.array([[1], [1], [0], [0]])
    rewards = np.array([[-5.0], [1.0], [10.0], [10.0]])
    m = run_metrics(states, actions, rewards, expected, gamma=0.9)
    assert m.regret.tolist() == [12.0]  # two suggestions of B, 6 lost each
    assert m.best_share_last_100.tolist() == [0.5]
    assert m.neg_rate_first_20.tolist() == [0.25]
    assert m.mean_reward_last_100.tolist() == [4.0]


def test_seed_learner_regret_matches_the_guides_measurement(capsys) -> None:
    """GUIDE §1: the seed algorithm's regret for pop_lover over 1000 steps is ≈ 2,100."""
    doc = compare_json(
        capsys, "--user", "pop_lover", "--episodes", "1000", "--seeds", "200", "--learner", "seed"
    )
    (r,) = doc["results"]
    assert 1700 < r["regret"] < 2600
    assert 0.35 < r["best_share_last_100"] < 0.6


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    bar = ProgressBar(10_000, quiet)
    bar(5000)
    bar(10_000)
    assert quiet.getvalue() == ""
    short = FakeTTY()
    ProgressBar(100, short)(100)
    assert short.getvalue() == ""
    tty = FakeTTY()
    bar = ProgressBar(10_000, tty)
    bar(5000)
    bar(10_000)
    assert "50%" in tty.getvalue()
    assert tty.getvalue().endswith("10,000/10,000\n")


def subprocess_cli(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_real_process_json_and_exit_codes() -> None:
    ok = subprocess_cli(
        "simulate", "--user", "pop_lover", "--episodes", "100", "--seed", "1", "--json",
        "--learner", "seed",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout).keys() >= SIM_KEYS
    assert ok.stderr == ""
    bad = subprocess_cli("simulate", "--alpha", "5")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "alpha" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = subprocess_cli("compare", "--user", "nobody", "--episodes", "10")
    assert bad.returncode == 2
    assert "nobody" in bad.stderr
    assert bad.stdout == ""


def test_simulate_prints_only_the_settings_the_learner_has(capsys) -> None:
    code, out, _ = run(capsys, "simulate", "--episodes", "200", "--seed", "1", "--learner", "dyna")
    assert code == 0
    settings = out.splitlines()[1]
    assert settings.startswith("settings: γ=0.9")
    for absent in ("α", "ε", "decay"):
        assert absent not in settings, settings
    assert "of picks were not the greedy genre" in settings
    code, out, _ = run(capsys, "simulate", "--episodes", "200", "--seed", "1", "--learner", "seed")
    settings = out.splitlines()[1]
    assert settings == "settings: α=0.1 γ=0.9 ε₀=1 decay=0.995 ε_min=0.1 → final ε 0.367"


@pytest.mark.parametrize("learner", ["seed", "dyna"])
def test_a_short_run_does_not_speak_of_the_last_100_steps(capsys, learner: str) -> None:
    code, out, _ = run(capsys, "simulate", "--episodes", "10", "--seed", "1", "--learner", learner)
    assert code == 0
    assert "last 100" not in out
    assert "mean reward: " in out
    assert "over all 10 steps" in out
    _, out, _ = run(capsys, "simulate", "--episodes", "101", "--seed", "1", "--learner", learner)
    assert "over the last 100 steps" in out
