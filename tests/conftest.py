"""Shared test set-up: a headless matplotlib backend and no stray Discord credentials."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
