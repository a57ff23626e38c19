"""Per-user, per-command cooldowns, owned by one bot.

They live in the app, not in a cog: the bot holds one table for every cog, and the
cogs only ask it (``cogs.common.enforce_cooldown``).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Cooldowns:
    """Cooldowns on a monotonic clock (not Discord ids).

    ``hit`` returns ``None`` when the call may go ahead (and starts the cooldown), or the
    seconds left. A ``per`` of 0 disables cooldowns.
    """

    def __init__(self, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per = float(per)
        self._clock = clock
        self._until: dict[tuple[str, int], float] = {}

    def hit(self, command: str, user_id: int) -> float | None:
        """Start the cooldown of ``(command, user_id)``, or return the seconds left."""
        if self.per <= 0:
            return None
        now = self._clock()
        if len(self._until) > 4096:  # forget expired entries now and then
            self._until = {k: t for k, t in self._until.items() if t > now}
        until = self._until.get((command, user_id))
        if until is not None and until > now:
            return until - now
        self._until[(command, user_id)] = now + self.per
        return None
