"""Reading a TOML or JSON document for the offline commands (populations).

The engine validates parsed mappings; reading files, and turning every way that can fail
into one line, happens here.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bot.errors import InvalidRequest


def read_document(path: str | Path, what: str) -> object:
    """The parsed contents of a .toml or .json file (``what`` names it in errors)."""
    p = Path(path)
    if p.suffix.lower() not in (".toml", ".json"):
        raise InvalidRequest(f"{what} file must be .toml or .json, got {str(p)!r}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {what} file {str(p)!r}: {exc.strerror}") from None
    try:
        if p.suffix.lower() == ".json":
            return json.loads(raw)
        return tomllib.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRequest(f"{p.name}: malformed file: {reason}") from None
