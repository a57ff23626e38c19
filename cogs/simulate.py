"""/simulate: pretrain the caller's own table against a simulated listener."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidRequest
from bot.render.text import format_policy, format_settings
from bot.service import SIMULATED_USERS, SimulationReport
from bot.workers import render_curve_png
from cogs.common import enforce_cooldown

if TYPE_CHECKING:
    from bot.app.bot import QTuneBot

HARD_CAP = 100_000  # Discord's own range check; the service enforces QTUNE_MAX_EPISODES
LAST_STEPS = 100


def whole_episodes(episodes: object) -> int:
    """The episodes option as sent; a hostile client can send any JSON value."""
    if isinstance(episodes, bool) or not isinstance(episodes, int):
        raise InvalidRequest("The episodes option must be a whole number.")
    return episodes


def report_message(report: SimulationReport) -> str:
    """The reply: only the settings the learner in use has, and how it explored."""
    mean = f"Mean reward {report.mean_reward:.2f}"
    if report.episodes > LAST_STEPS:  # "the last 100" of a shorter run is the whole run
        mean += f" (last {LAST_STEPS} steps: {report.mean_reward_last_100:.2f})"
    lines = [
        f"Trained your table against **{report.user}** for {report.episodes:,} steps.",
        f"{mean}.",
        f"Policy now: {format_policy(report.policy)}",
    ]
    if report.settings:
        line = f"-# learner settings: {format_settings(report.settings)}"
        if report.epsilon_final is not None:
            line += f" · ε now {report.epsilon_final:.3f}"
        elif report.explored_share is not None:
            line += f" · {report.explored_share:.0%} of picks were not the greedy genre"
        lines.append(line)
    return "\n".join(lines)


class Simulate(commands.Cog):
    """Pretraining, off the event loop."""

    def __init__(self, bot: QTuneBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="simulate", description="Pretrain your table against a simulated listener"
    )
    @app_commands.describe(
        user="Simulated listener: generic or a built-in taste profile",
        episodes="How many recommendation steps to simulate",
    )
    @app_commands.choices(user=[app_commands.Choice(name=n, value=n) for n in SIMULATED_USERS])
    async def simulate(
        self,
        interaction: discord.Interaction,
        user: str,
        episodes: app_commands.Range[int, 1, HARD_CAP],
    ) -> None:
        service = self.bot.service
        # Checked before the cooldown starts: a typo costs nothing.
        name = service.check_simulation(str(user), whole_episodes(episodes))
        enforce_cooldown(interaction, "simulate")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.in_flight.hold():
            report = await service.simulate(interaction.user.id, name, int(episodes))
        title = f"{report.user}: {report.episodes:,} steps"
        png = await service.run_cpu(
            render_curve_png, report.rewards, title, report.user, service.genres
        )
        await interaction.followup.send(
            report_message(report), file=discord.File(io.BytesIO(png), "learning_curve.png")
        )


async def setup(bot: QTuneBot) -> None:
    await bot.add_cog(Simulate(bot))
