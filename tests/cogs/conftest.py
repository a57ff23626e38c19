"""Fixtures for the cog tests: the real service over the in-memory storage, and a fake bot.

The Discord fakes themselves are in ``fakes.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from bot.engine.learners import make_learner
from bot.service import QTuneService
from storage.memory import MemoryStorage
from tests.cogs.fakes import FakeBot


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
async def service(storage: MemoryStorage) -> AsyncIterator[QTuneService]:
    """The real service (seed learner, seeded choices) on an empty in-memory storage."""
    yield QTuneService(storage, learner=make_learner("seed"), rng=np.random.default_rng(0))
    await storage.close()


@pytest.fixture
def fake_bot(service: QTuneService) -> FakeBot:
    return FakeBot(service)
