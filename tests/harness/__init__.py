"""The end-to-end harness shared by ``tests/e2e``, ``benchmarks/e2e_load.py`` and the docs.

- :mod:`.env`: the bot's settings pointing at a :class:`~tests.fakediscord.FakeDiscord`;
- :mod:`.process`: ``python -m bot`` as a child process (:class:`BotProcess`);
- :mod:`.inprocess`: the bot in the test's own event loop (:func:`running_bot`);
- :mod:`.flows`: user actions (``/nowplaying`` and its answer).
"""

from tests.harness.env import REPO, bot_environment, open_service_for, subprocess_env
from tests.harness.flows import GENRES, SUGGESTION, THUMBS_DOWN, THUMBS_UP, nowplaying, suggested
from tests.harness.inprocess import InProcessBot, running_bot
from tests.harness.process import BotProcess, Line, cpu_seconds

__all__ = [
    "GENRES",
    "REPO",
    "SUGGESTION",
    "THUMBS_DOWN",
    "THUMBS_UP",
    "BotProcess",
    "InProcessBot",
    "Line",
    "bot_environment",
    "cpu_seconds",
    "nowplaying",
    "open_service_for",
    "running_bot",
    "subprocess_env",
    "suggested",
]
