"""Fixtures for the end-to-end tests: the fake Discord, with its dump printed on failure."""

from __future__ import annotations

import pytest

from tests.e2e.fake_discord import FakeDiscord


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(
        getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


@pytest.fixture
async def fake(request: pytest.FixtureRequest):
    """A fresh fake Discord on 127.0.0.1; what it received is printed when the test fails."""
    async with FakeDiscord() as server:
        yield server
        if failed(request):
            print(server.dump())
