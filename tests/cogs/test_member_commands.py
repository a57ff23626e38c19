"""/help, /export and /stats formatting (the rules are the service's: tests/bot)."""

from __future__ import annotations

import json

from discord import app_commands

from bot.service import GenreStat, ServerStats
from cogs.export import export_file, export_message
from cogs.help import help_text
from cogs.stats import server_message


def test_help_lists_each_command_and_what_is_stored() -> None:
    commands = []

    class Tree:
        def get_commands(self, type=None):
            return commands

    for name in ("stats", "help"):
        commands.append(app_commands.Command(name=name, description=f"about {name}", callback=_cb))
    text = help_text(Tree(), 10.0, -5.0)  # type: ignore[arg-type]
    assert "`/help` — about help\n`/stats` — about stats" in text
    assert "+10" in text
    assert "-5" in text
    assert "/export" in text
    assert "/reset deletes" in text


async def _cb(interaction) -> None:  # a command needs a coroutine callback
    return None


def test_export_file_is_json_named_by_user() -> None:
    data = {"user_id": "42", "table": None, "recommendations": []}
    file = export_file(data)
    assert file.filename == "qtune-export-42.json"
    assert json.loads(file.fp.read()) == data
    assert export_message(data).startswith("I have nothing stored about you")
    data["recommendations"] = [{}]
    assert "1 recommendation." in export_message(data)


def test_server_message_lists_shown_genres_and_says_what_is_hidden() -> None:
    stats = ServerStats(1, 4, [GenreStat("Pop", 3, 6, 8)], hidden=2, min_members=3)
    text = server_message(stats)
    assert "**Pop**: liked 75% of 8 times, by 3 members" in text
    assert "2 genre(s) not shown: fewer than 3 members" in text
    assert server_message(ServerStats(1, 1, [], 1, 3)).startswith("Not enough members")
    assert server_message(ServerStats(1, 0, [], 0, 3)).startswith("Nobody")
