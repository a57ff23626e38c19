"""A stand-in for the chart renderers: the charts are tested by their owner
(tests/bot/render/test_charts.py); the cog tests check only that they are used, and off the loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

PNG = b"\x89PNG\r\n\x1a\nfake"


class ChartCalls(list[tuple[Any, ...]]):
    """(chart, size, title, rendered off the event loop's thread) per call."""


def patch_charts(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> ChartCalls:
    calls = ChartCalls()

    def off_loop() -> bool:
        return threading.current_thread() is not threading.main_thread()

    def qtable(genres: tuple[str, ...], q: Any, title: str) -> bytes:
        calls.append(("qtable", len(genres), title, off_loop()))
        return PNG

    def curve(rewards: Any, title: str, user: Any = None, genres: Any = None) -> bytes:
        calls.append(("curve", len(rewards), title, off_loop()))
        assert user is not None, "the simulated user is passed, for the best-reward line"
        assert genres
        return PNG

    for module in modules:
        if hasattr(module, "render_qtable_png"):
            monkeypatch.setattr(module, "render_qtable_png", qtable)
        if hasattr(module, "render_curve_png"):
            monkeypatch.setattr(module, "render_curve_png", curve)
    return calls
