"""/simulate: pretrain the caller's own table against a simulated listener."""

from __future__ import annotations

import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.engine.listeners import BUILTIN_PROFILES
from bot.errors import InvalidRequest
from bot.render.text import format_policy
from bot.workers import render_curve_png
from cogs.common import enforce_cooldown, service_of

HARD_CAP = 100_000
SIMULATED_USERS = ("generic", *BUILTIN_PROFILES)
"""Only these: a path to a profile file would let Discord users read the server's files."""


def check_request(user: str, episodes: int, cap: int) -> str:
    """The simulated user's name, or InvalidRequest in plain words."""
    if isinstance(episodes, bool) or not isinstance(episodes, int):
        raise InvalidRequest("The episodes option must be a whole number.")
    name = str(user).strip().lower()
    if name not in SIMULATED_USERS:
        raise InvalidRequest(
            f"Unknown simulated listener {user!r}. Choose one of: {', '.join(SIMULATED_USERS)}."
        )
    if not 1 <= episodes <= cap:
        raise InvalidRequest(f"episodes must be between 1 and {cap:,}; got {episodes:,}.")
    return name


def report_message(report) -> str:
    return (
        f"Trained your table against **{report.user}** for {report.episodes:,} steps.\n"
        f"Mean reward {report.mean_reward:.2f} (last 100 steps: "
        f"{report.mean_reward_last_100:.2f}).\n"
        f"Policy now: {format_policy(report.policy)}"
    )


class Simulate(commands.Cog):
    """Pretraining, off the event loop."""

    def __init__(self, bot: commands.Bot) -> None:
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
        cap = min(HARD_CAP, getattr(self.bot.settings, "max_episodes", HARD_CAP))
        name = check_request(user, episodes, cap)
        enforce_cooldown(interaction, "simulate")
        service = service_of(self.bot)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.activity():
            report = await service.simulate(interaction.user.id, name, int(episodes))
        title = f"{report.user}: {report.episodes:,} steps"
        png = await service.run_cpu(render_curve_png, report.rewards, title)
        await interaction.followup.send(
            report_message(report), file=discord.File(io.BytesIO(png), "learning_curve.png")
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Simulate(bot))
