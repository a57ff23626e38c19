"""What a user does in a test or a benchmark, in the bot's own words: /nowplaying and its reply."""

from __future__ import annotations

import re
from typing import Any

from tests.fakediscord import FakeDiscord, Interaction, Message

GENRES = ("Pop", "Rock", "Jazz", "Classical", "HipHop")
THUMBS_UP = "\N{THUMBS UP SIGN}"
THUMBS_DOWN = "\N{THUMBS DOWN SIGN}"
SUGGESTION = re.compile(r"Try \*\*(?P<genre>[^*]+)\*\*")


def suggested(content: str) -> str:
    """The genre a /nowplaying answer suggests."""
    match = SUGGESTION.search(content)
    assert match, f"the reply names no suggested genre: {content!r}"
    return match.group("genre")


async def nowplaying(
    fake: FakeDiscord, user_id: int, genre: str = "rock", within: float = 10.0, **where: Any
) -> tuple[Interaction, Message]:
    """``/nowplaying genre``: wait for a public answer and the bot's 👍 and 👎 on it.

    ``where`` picks the guild or channel (``guild_id=``, ``channel_id=``).
    """
    inter = await fake.send_command("nowplaying", {"genre": genre}, user_id=user_id, **where)
    await fake.interaction_response(inter.id, within=within)
    assert inter.callback_type == 4, fake.dump()
    assert inter.original_message_id is not None
    msg = await fake.wait_for_reactions(
        inter.original_message_id, [THUMBS_UP, THUMBS_DOWN], within=within
    )
    return inter, msg
