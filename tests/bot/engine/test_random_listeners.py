"""Random listener profiles (``bot.engine.random_listeners``)."""

from __future__ import annotations

from bot.engine.qlearning import DEFAULT_GENRES
from bot.engine.random_listeners import optimal_policy, policy_gap, random_profiles

G = DEFAULT_GENRES


def test_random_profiles_are_reproducible_and_have_a_clear_best() -> None:
    a, b = random_profiles(3, 6), random_profiles(3, 6)
    assert [u.describe() for u in a] == [u.describe() for u in b]
    assert all(policy_gap(u, G) >= 1.0 for u in a)
    dependent = [u for u in a if u.after]
    assert len(dependent) == 3
    assert all(len(set(optimal_policy(u, G).tolist())) > 1 for u in dependent)
