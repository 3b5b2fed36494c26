"""What never reaches an artifact: secrets in configuration payloads (header values, ``api_key``, a
webhook's ``secret``) and the values of tool arguments that the tool marks sensitive (a keypad-collected
argument with ``sensitive: true``, HOSTED.md §2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from voxgate.protocol.session_view import without_secrets

REDACTED = "[redacted]"


def sensitive_arguments(tools: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Tool name -> names of its sensitive arguments, from tool definitions (agent records or configs)."""
    marked: dict[str, frozenset[str]] = {}
    for tool in tools:
        names = frozenset(
            str(argument.get("parameter_name"))
            for argument in tool.get("dtmf_collected_arguments") or ()
            if isinstance(argument, Mapping) and argument.get("sensitive")
        )
        if names and isinstance(tool.get("name"), str):
            marked[tool["name"]] = names
    return marked


def redact_arguments(arguments: Any, sensitive: frozenset[str]) -> Any:
    if not sensitive or not isinstance(arguments, Mapping):
        return arguments
    return {key: REDACTED if key in sensitive else value for key, value in arguments.items()}


def redact_config(payload: Any) -> Any:
    """A copy of a ``session.update`` payload or configuration without its secrets."""
    return without_secrets(payload)
