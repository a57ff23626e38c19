"""👍/👎 on a recommendation become rewards: live, and after the bot was away.

Live reactions arrive as ``on_raw_reaction_add`` (raw: the message need not be cached).
Reactions given while the bot was not listening (stopped, or between gateway sessions)
are caught up on every READY: the requester's reaction is read back from Discord for each
recent unrewarded recommendation. Both paths call the same ``service.feedback``, which
applies a recommendation's first reaction exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.errors import StorageError
from bot.service import FeedbackResult
from cogs.common import REACTIONS

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot
    from bot.service import Recommendation

log = logging.getLogger("qtune.cogs.reactions")

CATCH_UP_MAX_AGE = 24 * 3600.0
"""Older unrewarded recommendations are not read back (Discord's reaction lists are slow)."""


class Reactions(commands.Cog):
    """The requester's first 👍/👎 on a suggestion, live or caught up after a restart."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot
        self.caught_up = asyncio.Event()
        """Set once the first catch-up has finished (tests and shutdown wait on it)."""

    async def cog_load(self) -> None:
        if self.bot.is_ready():  # loaded into a running bot: no READY is coming
            self.bot.spawn(self.catch_up(), "qtune-catch-up")

    # ------------------------------------------------------------------- live
    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        emoji = str(payload.emoji)
        if me is not None and payload.user_id == me.id:
            log.debug("ignored reaction %s on %s: the bot's own", emoji, payload.message_id)
            return
        if payload.member is not None and payload.member.bot:
            log.debug("ignored reaction %s on %s: by a bot", emoji, payload.message_id)
            return
        liked = REACTIONS.get(emoji)
        if liked is None:
            log.debug("ignored reaction %s on %s: not feedback", emoji, payload.message_id)
            return
        author = payload.message_author_id
        if me is not None and author is not None and author != me.id:
            log.debug("ignored reaction on %s: not the bot's message", payload.message_id)
            return
        try:
            async with self.bot.in_flight.hold():
                result = await self.bot.service.feedback(payload.message_id, payload.user_id, liked)
        except StorageError as exc:
            log.warning(
                "reaction on %s not applied: the database failed: %s",
                payload.message_id,
                exc,
                exc_info=exc,
            )
            return
        except Exception:
            log.exception("feedback for message %s failed", payload.message_id)
            return
        log_result(result, emoji, payload.message_id, payload.user_id)

    # ---------------------------------------------------------------- catch-up
    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # Every READY is a new gateway session: reactions may have been missed before it.
        self.bot.spawn(self.catch_up(), "qtune-catch-up")

    async def catch_up(self) -> int:
        """Apply 👍/👎 that requesters gave while the bot was not listening."""
        try:
            pending = await self.bot.service.pending(CATCH_UP_MAX_AGE)
            applied = 0
            for rec in pending:
                if self.bot.is_closed():
                    break
                try:
                    applied += await self._catch_up_one(rec)
                except (discord.NotFound, discord.Forbidden) as exc:
                    log.debug("cannot read reactions of message %s: %s", rec.message_id, exc)
                except discord.HTTPException as exc:
                    log.warning("reading reactions of message %s failed: %s", rec.message_id, exc)
            if pending:
                log.info(
                    "start-up catch-up: %d of %d unrewarded recommendation(s) had a reaction",
                    applied,
                    len(pending),
                )
            return applied
        finally:
            self.caught_up.set()

    async def _catch_up_one(self, rec: Recommendation) -> bool:
        if rec.channel_id is None:  # a console recommendation: nothing to read
            return False
        for emoji, liked in REACTIONS.items():
            if await self._has_reacted(rec.channel_id, rec.message_id, emoji, rec.user_id):
                async with self.bot.in_flight.hold():
                    result = await self.bot.service.feedback(rec.message_id, rec.user_id, liked)
                if result.applied:
                    log.info(
                        "applied %s given while offline by %s on %s",
                        emoji,
                        rec.user_id,
                        rec.message_id,
                    )
                return result.applied
        return False

    async def _has_reacted(
        self, channel_id: int, message_id: int, emoji: str, user_id: int
    ) -> bool:
        after: int | None = None
        while True:
            users = await self.bot.http.get_reaction_users(
                channel_id, message_id, emoji, limit=100, after=after
            )
            if any(int(u["id"]) == user_id for u in users):
                return True
            if len(users) < 100:
                return False
            after = int(users[-1]["id"])


def log_result(result: FeedbackResult, emoji: str, message_id: int, user_id: int) -> None:
    """One DEBUG line per reaction, applied or ignored.

    Not INFO: at load it was 3-6 % of the bot's CPU per interaction, one line per event;
    the operator's view of rewards is the database (``python -m bot qtable``).
    """
    if result.applied:
        log.debug(
            "reward %+g from user %s: %s → %s (TD error %+.3f, ε %.3f)",
            result.reward,
            user_id,
            result.state,
            result.action,
            result.td_error,
            result.epsilon,
        )
    else:
        log.debug("ignored reaction %s on %s by %s: %s", emoji, message_id, user_id, result.reason)


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Reactions(bot))
