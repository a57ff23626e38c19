"""bot/render/text.py: the monospace Q-table and the JSON form the CLI prints."""

from __future__ import annotations

import numpy as np

from bot.render.text import format_q_table, table_dict
from bot.service import TableView


def test_text_table_marks_best_action_per_row():
    genres = ("Pop", "Rock", "Jazz")
    q = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.5], [0.0, -1.0, 0.0]])
    text = format_q_table(genres, q, {"Pop": "Pop", "Rock": "Jazz", "Jazz": "Pop"})
    lines = text.splitlines()
    assert lines[0].split()[-3:] == ["Pop", "Rock", "Jazz"]
    assert lines[1].split() == ["Pop", "1.00*", "0.00", "0.00"]
    assert lines[2].split() == ["Rock", "0.00", "0.00", "2.50*"]
    assert lines[3].split() == ["Jazz", "0.00*", "-1.00", "0.00*"]  # a tie: both are best
    assert text.count("*") == 4


def test_table_dict_has_the_cli_keys():
    view = TableView(5, ("A", "B"), np.array([[1.0, 2.0], [3.0, 4.0]]), 0.5, 2, "B", {})
    assert table_dict(view) == {
        "user_id": 5,
        "genres": ["A", "B"],
        "q_table": [[1.0, 2.0], [3.0, 4.0]],
        "epsilon": 0.5,
        "rewards": 2,
        "current_genre": "B",
    }
