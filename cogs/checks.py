"""What a client sent, checked before discord.py reads it.

Discord's own client enforces option types, ranges and choices, but a buggy or hostile
client can send anything, and discord.py trusts the payload: a "number" option sent as
"ten" raises ``ValueError`` while it builds the namespace, an unresolved user becomes a
bare ``discord.Object``. :func:`check_interaction` runs as the tree's global check and
turns every such payload into :class:`BadOptions`, which the error policy answers in one
plain ephemeral line.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

import discord
from discord import app_commands
from discord.enums import AppCommandOptionType as OptionType

from bot.errors import InvalidRequest

MAX_TEXT = 100
"""Longest text option accepted when the command sets no ``max_length`` (genres are short)."""
MAX_SNOWFLAKE = 2**64 - 1

_KIND = {
    OptionType.string: "text",
    OptionType.integer: "a whole number",
    OptionType.number: "a number",
    OptionType.boolean: "true or false",
    OptionType.user: "a member of this server",
    OptionType.channel: "a channel",
    OptionType.role: "a role",
    OptionType.mentionable: "a member or a role",
    OptionType.attachment: "a file",
}
_RESOLVED_KEY = {  # where Discord puts the objects an id option refers to, and their name
    OptionType.user: (("users",), "user"),
    OptionType.channel: (("channels",), "channel"),
    OptionType.role: (("roles",), "role"),
    OptionType.mentionable: (("users", "roles"), "member or role"),
    OptionType.attachment: (("attachments",), "file"),
}


class BadOptions(InvalidRequest, app_commands.CheckFailure):
    """The interaction's options are malformed; the message says which and how."""


def _shown(text: Any) -> str:
    """A short, printable rendering of something a client sent, for an error message."""
    raw = str(text)
    clean = "".join(ch if ch.isprintable() else "?" for ch in raw[:40])
    return repr(clean + ("…" if len(raw) > 40 else ""))


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _leaf_options(data: Mapping[str, Any]) -> list[Any]:
    """The options of the invoked (sub)command, below any subcommand groups."""
    options = data.get("options") or []
    while (
        isinstance(options, list)
        and len(options) == 1
        and isinstance(options[0], dict)
        and options[0].get("type") in (1, 2)
    ):
        options = options[0].get("options") or []
    return options if isinstance(options, list) else [None]


def _check_range(param: app_commands.Parameter, value: float) -> None:
    low, high = param.min_value, param.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            span = f"between {low:,} and {high:,}"
        elif low is not None:
            span = f"at least {low:,}"
        else:
            span = f"at most {high:,}"
        raise BadOptions(f"The {param.display_name} option must be {span}; got {value:,}.")


def _check_text(param: app_commands.Parameter, value: str) -> None:
    # For text options discord.py keeps the length limits in min_value / max_value.
    limit = int(param.max_value or MAX_TEXT)
    shortest = param.min_value
    if len(value) > limit:
        raise BadOptions(
            f"The {param.display_name} option is too long ({len(value):,} characters; "
            f"at most {limit:,})."
        )
    if shortest is not None and len(value) < shortest:
        raise BadOptions(f"The {param.display_name} option needs at least {shortest} characters.")
    if _has_control(value):
        raise BadOptions(f"The {param.display_name} option contains control characters.")


def _check_value(
    param: app_commands.Parameter, option: Mapping[str, Any], resolved: Mapping[str, Any]
) -> None:
    kind = param.type
    wrong = BadOptions(f"The {param.display_name} option must be {_KIND.get(kind, 'valid')}.")
    if option.get("type") != kind.value or "value" not in option:
        raise wrong
    value = option["value"]
    if kind is OptionType.string:
        if not isinstance(value, str):
            raise wrong
        _check_text(param, value)
    elif kind is OptionType.integer:
        if not _is_int(value):
            raise wrong
        _check_range(param, value)
    elif kind is OptionType.number:
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise wrong
        _check_range(param, value)
    elif kind is OptionType.boolean:
        if not isinstance(value, bool):
            raise wrong
    elif kind in _RESOLVED_KEY:
        text = str(value)
        if not text.isdigit() or not 0 < int(text) <= MAX_SNOWFLAKE:
            raise wrong
        keys, noun = _RESOLVED_KEY[kind]
        if not any(text in (resolved.get(key) or {}) for key in keys):
            raise BadOptions(
                f"I couldn't find the {noun} you gave for {param.display_name}: "
                "please pick one from the list Discord offers."
            )
    if param.choices and value not in {c.value for c in param.choices}:
        names = ", ".join(str(c.value) for c in param.choices)
        raise BadOptions(
            f"{_shown(value)} is not a choice for {param.display_name}. Choose one of: {names}."
        )


def check_options(command: app_commands.Command[Any, ..., Any], data: Mapping[str, Any]) -> None:
    """Raise :class:`BadOptions` unless ``data`` carries exactly ``command``'s options, well-typed.

    ``data`` is the interaction's raw ``data`` object.
    """
    params = {p.display_name: p for p in command.parameters}
    resolved = data.get("resolved")
    resolved = {} if resolved is None else resolved
    if not isinstance(resolved, dict) or not all(isinstance(v, dict) for v in resolved.values()):
        raise BadOptions(f"/{command.qualified_name} was sent with malformed data.")
    seen: set[str] = set()
    for option in _leaf_options(data):
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            raise BadOptions(f"/{command.qualified_name} was sent with malformed options.")
        name = option["name"]
        param = params.get(name)
        if param is None:
            raise BadOptions(f"/{command.qualified_name} has no option {_shown(name)}.")
        if name in seen:
            raise BadOptions(f"The {name} option was given twice.")
        seen.add(name)
        _check_value(param, option, resolved)
    missing = [p.display_name for p in params.values() if p.required and p.display_name not in seen]
    if missing:
        raise BadOptions(f"/{command.qualified_name} needs the {', '.join(missing)} option.")


def check_interaction(interaction: discord.Interaction) -> bool:
    """The tree's global check: True to go on, or raises the answer to give
    (:class:`BadOptions`, or :class:`~discord.app_commands.NoPrivateMessage`).

    Autocomplete values are partial text by design (the command re-checks the final
    value), and such a request cannot be answered with a message, so it is let through.
    """
    if interaction.type is not discord.InteractionType.application_command:
        return True
    data: Mapping[str, Any] = interaction.data or {}
    if data.get("type", 1) != 1:  # context menus: no options to check
        return True
    try:
        command = interaction.command
    except app_commands.AppCommandError:
        command = None
    except Exception:  # a name or option tree so broken that discord.py cannot look it up
        raise BadOptions("That command was sent with malformed data.") from None
    if not isinstance(command, app_commands.Command):
        return True  # unknown commands are discord.py's to answer (CommandNotFound)
    if command.guild_only and interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    check_options(command, data)
    return True
