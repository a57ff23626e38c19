"""``planning.replan``'s shortcut (a bound on the policy's lead) gives exactly the plan a
full policy-iteration solve gives, step after step."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.learners.dyna import planning


@pytest.mark.parametrize("n", [1, 3, 5])
def test_replan_is_a_full_solve_after_every_column_change(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small and large changes to one column at a time, on and off the policy: replan's
    policy, values and row maxima equal improve's from the same policy, bit for bit, and
    most steps take the bound (no full solve) while the large ones do solve again."""
    rng = np.random.default_rng(n)
    gamma = 0.9
    rows = (rng.normal(size=(n, n)) * 3.0).tolist()
    plan = planning.improve(rows, [0] * n, gamma)
    solves = 0
    improve = planning.improve

    def counted(*args: object) -> planning.Plan:
        nonlocal solves
        solves += 1
        return improve(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(planning, "improve", counted)
    steps = 400
    for step in range(steps):
        a = int(rng.integers(n))
        size = 3.0 if step % 25 == 0 else 1e-3  # now and then a move that can flip π
        before = [row[a] for row in rows]
        for row in rows:
            row[a] += size * rng.normal()
        moved = max(abs(row[a] - b) for row, b in zip(rows, before, strict=True))
        want = improve([r.copy() for r in rows], plan.pi.copy(), gamma)
        plan = planning.replan(plan, rows, a, gamma, moved)
        assert plan.pi == want.pi
        assert plan.v == want.v
        assert plan.gv == want.gv
        assert plan.best == want.best
        assert plan.g_max == want.g_max
    assert solves < steps // 2  # the bound held on most steps
    if n > 1:
        assert solves >= steps // 25  # and gave way on the large moves
