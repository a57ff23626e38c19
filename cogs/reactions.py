"""👍/👎 on a recommendation become rewards: live, and after the bot was away.

Live reactions arrive as ``on_raw_reaction_add`` (raw: the message need not be cached).
Reactions given while the bot was not listening (stopped, or between gateway sessions)
are caught up on every READY: the requester's reaction is read back from Discord for each
recent unrewarded recommendation. Both paths call the same ``service.feedback``, which
applies a recommendation's first reaction exactly once.

A reaction that meets a busy or absent database is not dropped: the
:class:`~bot.resilience.FeedbackRetrier` retries it with backoff (``QTUNE_FEEDBACK_RETRY``
seconds), then defers it; a periodic pass (every ``QTUNE_RECONCILE_INTERVAL`` seconds)
applies deferred reactions once the database answers, and then catches up on Discord's
record of the reactions given since the outage began. In a cluster each process catches
up on the guilds of its own shards only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.errors import StorageError, StorageUnavailable
from bot.resilience import FeedbackRetrier
from bot.service import FeedbackResult
from cogs.common import REACTIONS

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot
    from bot.service import Recommendation

log = logging.getLogger("qtune.cogs.reactions")

CATCH_UP_MAX_AGE = 24 * 3600.0
"""Older unrewarded recommendations are not read back (Discord's reaction lists are slow)."""
OUTAGE_MARGIN = 120.0
"""Seconds before an outage's first failure that the catch-up after it covers."""


class Reactions(commands.Cog):
    """The requester's first 👍/👎 on a suggestion, live or caught up after a restart."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot
        self.caught_up = asyncio.Event()
        """Set once the first catch-up has finished (tests and shutdown wait on it)."""
        self.retrier = FeedbackRetrier(
            self._feedback,
            retry_for=bot.settings.feedback_retry,
            stopping=lambda: bot.shutting_down,
        )

    async def cog_load(self) -> None:
        if self.bot.is_ready():  # loaded into a running bot: no READY is coming
            self.bot.spawn(self.catch_up(), "qtune-catch-up")
        self.bot.spawn(self._periodically(), "qtune-reconcile")

    async def _feedback(self, message_id: int, user_id: int, liked: bool) -> FeedbackResult:
        """One attempt (the retrier calls it again after a storage failure)."""
        async with self.bot.in_flight.hold():
            return await self.bot.service.feedback(message_id, user_id, liked)

    async def _periodically(self) -> None:
        """Apply deferred reactions once the database is back, then catch up on those
        given since the outage began (an event missed meanwhile, a failed catch-up)."""
        try:
            while True:
                await asyncio.sleep(self.bot.settings.reconcile_interval)
                if self.retrier.deferred:
                    await self.retrier.drain()
                since = self.retrier.recovered()
                if since is not None and self.bot.is_ready():
                    log.info("the database is back; catching up on reactions since the outage")
                    await self.catch_up(time.time() - since + OUTAGE_MARGIN)
        finally:
            if self.retrier.deferred:
                log.warning(
                    "%d reaction(s) still wait for the database; the next start-up catch-up "
                    "applies them",
                    len(self.retrier.deferred),
                )

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
            result = await self.retrier.apply(payload.message_id, payload.user_id, liked)
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
        if result is None:  # deferred: applied once the database is back
            return
        log_result(result, emoji, payload.message_id, payload.user_id)

    # ---------------------------------------------------------------- catch-up
    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # Every READY is a new gateway session: reactions may have been missed before it.
        self.bot.spawn(self.catch_up(), "qtune-catch-up")

    async def catch_up(self, max_age: float = CATCH_UP_MAX_AGE) -> int:
        """Apply 👍/👎 that requesters gave while the bot was not listening."""
        try:
            try:
                pending = await self.bot.service.pending(max_age)
            except StorageUnavailable as exc:  # the periodic pass runs it again later
                self.retrier.note_failure(exc)
                log.warning("catch-up postponed until the database is back: %s", exc)
                return 0
            settings = self.bot.settings
            if settings.sharded:  # each process catches up on its own shards' guilds
                pending = [rec for rec in pending if settings.owns_guild(rec.guild_id)]
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
                result = await self.retrier.apply(rec.message_id, rec.user_id, liked)
                if result is None:  # deferred
                    return False
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
