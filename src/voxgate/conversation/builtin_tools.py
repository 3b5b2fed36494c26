"""Tools the server itself provides (HOSTED.md §7, ``GET /v1/builtin-tools``).

An agent gets one by listing its name among its tools with no ``http`` block, e.g.
``{"name": "aai_credit_card_luhn_check"}``; a description or parameters it leaves out are the built-in
ones (:func:`offered_schema`). A built-in tool that :attr:`~BuiltinTool.runs_on_server` is executed by
the session like an HTTP tool (``conversation.http_tools.run_http_tool`` dispatches to :func:`run_builtin`);
the others are listed and described here, and their behaviour belongs to the phone bridge.

- ``aai_credit_card_luhn_check``: whether a card number passes the Luhn checksum. Its answer is only
  ``{"valid": true|false}``: the number is never logged nor echoed back.
- ``end_call``: the agent ends the call (or session) once its last words were heard.
- ``transfer_call``: the agent hands a phone call over to one of its ``transfer_targets``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from voxgate.conversation.ledger import tool_error_text
from voxgate.protocol.config import ToolSpec

LUHN_CHECK = "aai_credit_card_luhn_check"
END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
CARD_NUMBER_ARGUMENT = "card_number"
CARD_DIGITS = range(12, 20)
"""Payment card numbers have 12 to 19 digits (ISO/IEC 7812)."""
CARD_SEPARATORS = " -"


@dataclass(frozen=True, slots=True)
class BuiltinOutcome:
    text: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    name: str
    description: str
    parameters: dict[str, Any]
    execution_mode: Literal["interactive", "hold"]
    run: Callable[[Mapping[str, Any]], BuiltinOutcome] | None = None
    """Its server-side behaviour; None for a tool handled elsewhere (the phone bridge)."""

    @property
    def runs_on_server(self) -> bool:
        return self.run is not None

    def listing(self) -> dict[str, Any]:
        """The tool as ``GET /v1/builtin-tools`` lists it."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "execution_mode": self.execution_mode,
        }


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (digits, optionally grouped with spaces or dashes) is a card number of a valid
    length whose Luhn checksum holds."""
    digits = [c for c in number if c not in CARD_SEPARATORS]
    if len(digits) not in CARD_DIGITS or not all("0" <= c <= "9" for c in digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _luhn_check(arguments: Mapping[str, Any]) -> BuiltinOutcome:
    number = arguments.get(CARD_NUMBER_ARGUMENT)
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if not isinstance(number, str):
        return BuiltinOutcome(
            tool_error_text(f"{CARD_NUMBER_ARGUMENT} (a string of digits) is required."), True
        )
    return BuiltinOutcome(json.dumps({"valid": luhn_valid(number)}), False)


NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "required": []}

BUILTIN_TOOLS: tuple[BuiltinTool, ...] = (
    BuiltinTool(
        name=LUHN_CHECK,
        description=(
            "Check whether a credit or debit card number is well formed (Luhn checksum and length) before "
            'using it. Returns {"valid": true} or {"valid": false}; it does not charge or look up the card.'
        ),
        parameters={
            "type": "object",
            "properties": {
                CARD_NUMBER_ARGUMENT: {
                    "type": "string",
                    "description": "The card number, digits only (spaces or dashes are ignored).",
                }
            },
            "required": [CARD_NUMBER_ARGUMENT],
        },
        execution_mode="interactive",
        run=_luhn_check,
    ),
    BuiltinTool(
        name=END_CALL,
        description=(
            "End the conversation (hang up a phone call) once you have said goodbye. Call it after your "
            "closing words; they are heard in full before the call ends."
        ),
        parameters=NO_PARAMETERS,
        execution_mode="interactive",
    ),
    BuiltinTool(
        name=TRANSFER_CALL,
        description=(
            "Transfer the phone call to one of the agent's transfer targets (a person or another agent). "
            "Say a short handover line first."
        ),
        parameters={
            "type": "object",
            "properties": {
                "target": {"type": "string", "description": "The name of the transfer target."},
                "reason": {
                    "type": "string",
                    "description": "Why the caller is transferred (for the target).",
                },
            },
            "required": ["target"],
        },
        execution_mode="interactive",
    ),
)
_BY_NAME = {tool.name: tool for tool in BUILTIN_TOOLS}


def builtin_tool(name: str) -> BuiltinTool | None:
    return _BY_NAME.get(name)


def server_builtin(spec: ToolSpec) -> BuiltinTool | None:
    """The built-in tool that ``spec`` (a tool without ``http``, named like a built-in) runs on the
    server, or None."""
    if spec.http is not None:
        return None
    tool = _BY_NAME.get(spec.name)
    return tool if tool is not None and tool.runs_on_server else None


def offered_schema(spec: ToolSpec) -> tuple[str, dict[str, Any]]:
    """``(description, parameters)`` the model is shown for ``spec``: a built-in tool listed by name alone
    gets its built-in description and parameters."""
    tool = _BY_NAME.get(spec.name) if spec.http is None else None
    if tool is None:
        return spec.description, spec.parameters
    description = spec.description or tool.description
    parameters = spec.parameters if spec.parameters.get("properties") else tool.parameters
    return description, parameters


def run_builtin(tool: BuiltinTool, arguments: Mapping[str, Any]) -> BuiltinOutcome:
    assert tool.run is not None
    return tool.run(arguments)
