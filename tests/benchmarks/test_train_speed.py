"""The learner-speed figures that ``train_speed.py`` and ``e2e_load.py`` print: measured, not
assumed, and judged against their targets (the verdicts, never the timings, are tested)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from train_speed import DYNA_TARGET, LearnerSpeed, learner_speed


def test_learner_speed_measures_both_loops() -> None:
    speed = learner_speed(steps=500, dyna_steps=100, repeat=1, simulate_episodes=50)
    assert speed.reference > 0
    assert speed.dyna > 0
    assert speed.simulate_s > 0
    assert speed.ratio == speed.dyna / speed.reference
    text = "\n".join(speed.lines())
    assert "a 50-step /simulate" in text
    assert "target < 2" not in text  # the 2 s target is for a 100,000-step run only


def test_verdicts_follow_the_targets() -> None:
    fast = LearnerSpeed(reference=100.0, dyna=DYNA_TARGET * 100.0, simulate_s=1.5)
    slow = LearnerSpeed(reference=100.0, dyna=DYNA_TARGET * 99.0, simulate_s=2.0)
    assert [line.endswith("met)") for line in fast.lines()[2:]] == [True, True]
    assert [line.endswith("MISSED)") for line in slow.lines()[2:]] == [True, True]
