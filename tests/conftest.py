"""Shared test set-up: a headless matplotlib backend, and a throwaway PostgreSQL server.

``pg_server`` starts one server for the whole session (about 1 s); ``pg_url`` gives each
test a fresh empty database on it. Where the server binaries are missing those tests
skip, unless ``QTUNE_REQUIRE_PG=1`` (CI sets it): then they fail.
"""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from tests.pg_server import PgServer, find_bindir, reap_leftovers


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.environ.get("QTUNE_REQUIRE_PG") == "1":
            pytest.fail(f"{message}, and QTUNE_REQUIRE_PG=1", pytrace=False)
        pytest.skip(message)
    reap_leftovers()
    server = PgServer(bindir)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        detail = getattr(exc, "stderr", "") or exc
        pytest.fail(f"cannot start a throwaway PostgreSQL server: {detail}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database for this test."""
    return pg_server.create_database()
