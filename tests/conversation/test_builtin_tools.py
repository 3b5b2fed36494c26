"""Built-in tools (conversation/builtin_tools.py): the Luhn check, and how a tool listed by name becomes a
server-side built-in."""

from __future__ import annotations

import json

import pytest

from voxgate.conversation.builtin_tools import (
    BUILTIN_TOOLS,
    LUHN_CHECK,
    builtin_tool,
    luhn_valid,
    offered_schema,
    run_builtin,
    server_builtin,
)
from voxgate.conversation.tools import runs_on_server
from voxgate.protocol.config import ToolSpec


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),  # Visa test number
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("5555555555554444", True),  # Mastercard
        ("378282246310005", True),  # Amex, 15 digits
        ("6011111111111117", True),  # Discover
        ("4111111111111112", False),  # one digit off
        ("5555555555554440", False),
        ("79927398713", False),  # Luhn-valid, but 11 digits is no card number
        ("4" + "0" * 19, False),  # 20 digits
        ("4111a11111111111", False),
        ("", False),
        ("0000000000000000", True),  # the checksum alone holds
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("arguments", "text", "is_error"),
    [
        ({"card_number": "4111111111111111"}, '{"valid": true}', False),
        ({"card_number": "4111111111111112"}, '{"valid": false}', False),
        ({"card_number": 4111111111111111}, '{"valid": true}', False),
        ({}, None, True),
        ({"card_number": True}, None, True),
    ],
)
def test_the_luhn_tool_answers_valid_only_and_never_echoes(
    arguments: dict[str, object], text: str | None, is_error: bool
) -> None:
    tool = builtin_tool(LUHN_CHECK)
    assert tool is not None and tool.runs_on_server
    outcome = run_builtin(tool, arguments)
    assert outcome.is_error is is_error
    if text is not None:
        assert outcome.text == text
    assert "4111" not in outcome.text
    json.loads(outcome.text)


def test_a_tool_listed_by_name_is_the_built_in() -> None:
    listed = ToolSpec(name=LUHN_CHECK)
    assert server_builtin(listed) is builtin_tool(LUHN_CHECK) and runs_on_server(listed)
    description, parameters = offered_schema(listed)
    assert "Luhn" in description and parameters["required"] == ["card_number"]
    # an agent's own description is kept; an HTTP tool of the same name is the agent's own tool
    described = ToolSpec(name=LUHN_CHECK, description="Validate the caller's card.")
    assert offered_schema(described)[0] == "Validate the caller's card."
    own = ToolSpec(name=LUHN_CHECK, http={"url": "https://tools.example.com/luhn"})
    assert server_builtin(own) is None and offered_schema(own)[0] == ""
    # end_call and transfer_call are described, but not run by the session
    for name in ("end_call", "transfer_call"):
        spec = ToolSpec(name=name)
        assert server_builtin(spec) is None and not runs_on_server(spec)
        assert offered_schema(spec)[0]
    assert not runs_on_server(ToolSpec(name="get_weather"))
    assert {tool.name for tool in BUILTIN_TOOLS} >= {LUHN_CHECK, "end_call", "transfer_call"}
