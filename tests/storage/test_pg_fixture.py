"""The PostgreSQL fixture (``tests/conftest.py``) skips where the server binaries are
absent, and fails instead under ``QTUNE_REQUIRE_PG=1``, which CI sets: a CI machine
without PostgreSQL must go red, not quietly skip the PostgreSQL half of the suite.

Each case runs pytest in a subprocess on a one-test file that asks for ``pg_url``, with
``QTUNE_PG_BIN`` (the only folder :func:`tests.pg_server.find_bindir` looks at when it
is set) pointed at an empty folder, or at the real binaries for the control case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_server import PgServer

REPO = Path(__file__).resolve().parents[2]
INNER = """
def test_needs_postgres(pg_url):
    assert pg_url.startswith("postgresql://")
"""
MISSING = "PostgreSQL server binaries (initdb, pg_ctl) not found"


def run_inner(tmp_path: Path, bindir: Path, require: str | None) -> subprocess.CompletedProcess:
    """pytest on the one-test file with the repo's fixtures (``-p tests.conftest``)."""
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTUNE_", "PYTEST_"))}
    env["QTUNE_PG_BIN"] = str(bindir)
    env["PYTHONPATH"] = str(REPO)
    if require is not None:
        env["QTUNE_REQUIRE_PG"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-rA", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_inner.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("require", [None, "0"])
def test_no_server_binaries_skips_the_postgres_tests(tmp_path: Path, require: str | None) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    out = run_inner(tmp_path, empty, require)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout, out.stdout
    assert MISSING in out.stdout


def test_no_server_binaries_fail_under_qtune_require_pg(tmp_path: Path) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    out = run_inner(tmp_path, empty, "1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 error" in out.stdout, out.stdout
    assert "skipped" not in out.stdout, out.stdout
    assert f"{MISSING}, and QTUNE_REQUIRE_PG=1" in out.stdout


def test_with_the_binaries_the_postgres_test_runs(tmp_path: Path, pg_server: PgServer) -> None:
    """The control: the same file, pointed at the real binaries, runs and passes."""
    out = run_inner(tmp_path, pg_server.bindir, "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout, out.stdout
