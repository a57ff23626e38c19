"""``dyna``: Q-learning that learns a listener in tens of reactions.

Why it is fast, in three parts, all derived from the stored counts
(``visits``, ``reward_sum``) so nothing is persisted beyond :class:`LearnerState`:

1. **A pooled reward model.** Rewards are rescaled to [0, 1] between the dislike
   and like rewards (exact for 👍/👎) and each genre gets a Beta posterior with
   fractional counts, pooled over all current genres, so one 👍 for Pop informs every
   row. Each cell r(s, a) is either that pooled reward or a taste of its own
   (spike and slab); Beta-binomial evidence decides per cell, so a taste that depends
   on the current genre (Jazz after Classical) takes over after a few reactions in
   that state, while consistent data keep the rows shared.
2. **Dyna planning, solved exactly.** The next genre is the suggested one, so given r̂
   the model is a deterministic MDP on the genres and its optimum is
   Q(s, a) = r̂(s, a) + γ·max Q(a, ·). After the real TD step (step size 1/visits) the
   whole table is set to that fixed point by policy iteration warm-started from the
   greedy policy (:func:`.planning.solve`), so Q is on the scale of Q* from the first reaction
   and ``/qtable`` never shows a half-planned table (a few sweeps from Q = 0 left
   values rising after any reaction, 👎 included). Q now moves only as r̂ does; r̂ of
   the reacted cell always moves the reaction's way, but the spike and slab explains
   away: a 👎 for a in one row can make another row's many 👍 for a look more like a
   taste of its own and lift that row's r̂(·, a) (and Q) a little.
3. **Sharpened Thompson selection.** To choose, sample r(s, ·) from the posterior
   (concentrated ×6, and ×180 for a brand-new listener fading over ~20 reactions),
   add the planned γ·max Q, and take the best genre. Real listeners react tens of
   times, so the first suggestions lean on what is already known instead of
   exploring every genre; uncertain genres are still tried while it matters.

``epsilon`` is kept as an observable: an exponential average of how often the
suggestion was not the current greedy genre (1.0 for a new listener, → 0 as it settles).
The package follows those seams: :mod:`.params` (the settings and the reward range),
:mod:`.posterior` (the reward model on arrays, the reference, which also serves a batch
``(U, n, n)``), :mod:`.scalar` (the same model for one listener on plain floats, tested
equal: an update at (s, a) recomputes only column a's posterior), :mod:`.planning`
(the exact solve) and :mod:`.learner` (the :class:`DynaLearner` that ties them).
"""

from __future__ import annotations

from bot.engine.learners.dyna.learner import DynaLearner
from bot.engine.learners.dyna.params import DynaParams, RewardScale

__all__ = ["DynaLearner", "DynaParams", "RewardScale"]
