"""A closed pipe ends a command quietly, as ``cat`` or ``grep`` would.

``python -m bot simulate ... | head -1`` closes the pipe after one line. Python then raises
``BrokenPipeError`` at the next write, or at the final flush when the interpreter exits
("Exception ignored ... BrokenPipeError"), depending on how much was still buffered, so the
traceback came one run in three. The fix the Python documentation gives (signal module,
"Note on SIGPIPE"): flush inside the guarded block, and point stdout at ``/dev/null`` so the
exit-time flush has nowhere to fail.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a program ended by a closed pipe."""


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file
        pass


def quiet_broken_pipe(func: Callable[P, int]) -> Callable[P, int]:
    """Run ``func``; on a closed stdout, return EXIT_BROKEN_PIPE without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            code = func(*args, **kwargs)
            sys.stdout.flush()  # fail here, inside the guard, not at interpreter exit
            return code
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE

    return wrapper
