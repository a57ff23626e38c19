"""A small fake Discord (REST + gateway) on 127.0.0.1 for end-to-end tests and benchmarks.

- :mod:`.models`: what it remembers (guilds, messages, interactions, requests, sessions);
- :mod:`.payloads`: the JSON shapes discord.py reads;
- :mod:`.gateway`: the websocket, with shards; :mod:`.rest`: the REST routes;
- :mod:`.ratelimit`: Discord's per-route buckets and their headers;
- :mod:`.server`: :class:`FakeDiscord`, the driver tests and benchmarks use.
"""

from tests.fakediscord.models import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    Attachment,
    GatewaySession,
    Guild,
    Interaction,
    Message,
    Part,
    Request,
    shard_of,
)
from tests.fakediscord.ratelimit import Limit, RateLimits
from tests.fakediscord.server import FakeDiscord, WaitTimeout

__all__ = [
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "Attachment",
    "FakeDiscord",
    "GatewaySession",
    "Guild",
    "Interaction",
    "Limit",
    "Message",
    "Part",
    "RateLimits",
    "Request",
    "WaitTimeout",
    "shard_of",
]
