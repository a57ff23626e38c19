"""The throwaway PostgreSQL server of the tests is stopped by its pid even when the run
that started it was killed: the next run's reap_leftovers finds it by its owner file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.pg_server import PgServer, _pid_alive, _postmaster_pid, reap_leftovers

STARTER = """
import sys, time
from tests.pg_server import PgServer, find_bindir
server = PgServer(find_bindir()).start()
print(server.root, flush=True)
time.sleep(600)
"""


def test_a_server_left_by_a_killed_run_is_stopped_by_the_next(pg_server: PgServer) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert proc.stdout is not None
    folder = Path(proc.stdout.readline().strip())
    pid = _postmaster_pid(folder / "data")
    assert pid is not None
    assert _pid_alive(pid)
    proc.kill()  # no atexit, no cleanup: the server keeps running
    proc.wait(10)
    assert _pid_alive(pid)
    assert reap_leftovers() >= 1
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid), "the leftover server was stopped by its pid"
    assert not folder.exists()
    # The live session's own server (its owner is this process) is left alone.
    own = _postmaster_pid(pg_server.data)
    assert own is not None
    assert _pid_alive(own)
