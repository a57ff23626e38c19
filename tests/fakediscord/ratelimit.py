"""Discord's per-route rate limits, with the headers discord.py reads to queue its requests.

A bucket is a route template plus its major parameter (the channel, the guild, or the
webhook id and token), as on Discord. Each bucket allows ``limit`` requests per window of
``per`` seconds, starting at its first request. Every response in a limited route carries
``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (epoch seconds), ``-Reset-After`` and
``-Bucket``; a request over the limit is answered 429 with ``retry_after``, as Discord
does. The global limit (50 requests/s per token, interactions exempt) is not modelled.

:data:`DISCORD` holds the figures that matter for a reaction bot: adding a reaction is
limited to 1 per 0.25 s per channel, which is what makes discord.py send a channel's
reactions one after the other.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Limit:
    """``limit`` requests per ``per`` seconds."""

    limit: int
    per: float


# Route templates as the REST router names them, "METHOD path/{param}".
REACTION_ME = "channels/{c}/messages/{m}/reactions/{e}/@me"
DISCORD: dict[str, Limit] = {
    # Adding and removing the bot's own reactions share one bucket per channel.
    f"PUT {REACTION_ME}": Limit(1, 0.25),
    f"DELETE {REACTION_ME}": Limit(1, 0.25),
    "GET channels/{c}/messages/{m}/reactions/{e}": Limit(5, 1.0),
    "GET channels/{c}/messages/{m}": Limit(5, 1.0),
}
SHARED = {f"DELETE {REACTION_ME}": f"PUT {REACTION_ME}"}
MAJOR = ("c", "g", "a")  # channel, guild, webhook (application id; the token joins it)


@dataclass
class Window:
    limit: Limit
    started: float = 0.0
    used: int = 0

    def take(self, now: float) -> bool:
        if now >= self.started + self.limit.per:
            self.started, self.used = now, 0
        if self.used >= self.limit.limit:
            return False
        self.used += 1
        return True

    def reset_after(self, now: float) -> float:
        return max(0.0, self.started + self.limit.per - now)


@dataclass
class RateLimits:
    """The buckets of one fake; ``limits`` maps route templates to their limit."""

    limits: dict[str, Limit] = field(default_factory=lambda: dict(DISCORD))
    windows: dict[tuple[str, tuple[str, ...]], Window] = field(default_factory=dict)
    limited: int = 0  # requests answered 429

    def check(
        self, template: str, params: dict[str, str]
    ) -> tuple[dict[str, str], web.Response | None]:
        """Headers for the response, and a 429 response when the bucket is empty."""
        route = SHARED.get(template, template)
        limit = self.limits.get(route)
        if limit is None:
            return {}, None
        major = tuple(params[k] for k in MAJOR if k in params)
        if "a" in params and "t" in params:
            major += (params["t"],)
        window = self.windows.setdefault((route, major), Window(limit))
        now = time.monotonic()
        allowed = window.take(now)
        after = math.ceil(window.reset_after(now) * 1000) / 1000  # never early, at ms steps
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(max(0, limit.limit - window.used)),
            "X-RateLimit-Reset": f"{time.time() + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(route.encode()).hexdigest()[:16],
        }
        if allowed:
            return headers, None
        self.limited += 1
        headers["X-RateLimit-Scope"] = "user"
        return headers, too_many(after, headers)


def too_many(retry_after: float, headers: dict[str, str]) -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return web.Response(
        body=json.dumps(body).encode(),
        status=429,
        headers={
            "Content-Type": "application/json",
            "Retry-After": f"{retry_after:.3f}",
            # discord.py takes a 429 without "Via" for a Cloudflare ban and gives up.
            "Via": "1.1 google",
            **headers,
        },
    )
