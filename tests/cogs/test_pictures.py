"""The cogs' picture helpers produce real PNGs with the charts module (off the loop)."""

from __future__ import annotations

import asyncio

import numpy as np

from cogs.simulate import render_curve_png
from cogs.table import render_qtable_png
from tests.cogs.conftest import TableView

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def test_qtable_and_curve_pngs_render_in_a_thread():
    genres = ("Pop", "Rock", "Jazz")
    view = TableView(1, genres, np.eye(3), 0.5, 1, "Pop", dict.fromkeys(genres, "Pop"))
    table_png, curve_png = await asyncio.gather(
        asyncio.to_thread(render_qtable_png, view, "Q-table for someone"),
        asyncio.to_thread(render_curve_png, np.tile([10.0, -5.0, 1.0], 100), "pop_lover"),
    )
    for png in (table_png, curve_png):
        assert png.startswith(PNG_MAGIC)
        assert len(png) > 1000
