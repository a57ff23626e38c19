"""The storage fixtures: one parametrized over every backend, Red-DiscordBot's habit.

Tests that take ``storage`` or ``backend`` run once per backend in
:data:`tests.storage.backends.BACKENDS`; their helpers live in ``backends.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.base import Storage
from tests.storage.backends import BACKENDS, Backend, make_backend


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """An empty database of each kind; ``await backend.open(genres)`` (re)opens it."""
    made = make_backend(request.param, request)
    yield made
    await made.close()


@pytest.fixture
async def storage(backend: Backend) -> Storage:
    """A storage on an empty database, with the default genres, for each backend."""
    return await backend.open()
