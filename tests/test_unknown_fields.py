"""protocol/unknown_fields.py: which keys of a configuration object its model does not declare."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from voxgate.protocol.config import SESSION_PATCH_SHAPES, SessionConfig, SessionConfigPatch
from voxgate.protocol.unknown_fields import drop_unknown_fields

KNOWN_TOOL = {
    "type": "function", "id": "tool_1", "name": "t", "description": "", "parameters": {"x": {"y": 1}},
    "response_instructions": {"success": "ok"},
    "dtmf_collected_arguments": [{"parameter_name": "p", "prompt": "P", "min_digits": 1, "max_digits": 2}],
    "http": {"url": "https://a.example.com", "method": "GET", "headers": [{"name": "A", "value": "v"}]},
}  # fmt: skip


@pytest.mark.parametrize(
    ("session", "dropped"),
    [
        ({"system_prompt": "x"}, []),
        ({"colour": "blue"}, ["session.colour"]),
        ({"input": {"language_codes": ["en"], "turn_detection": {"eagerness": 1}}},
         ["session.input.language_codes", "session.input.turn_detection.eagerness"]),
        ({"output": {"voice": "ivy", "format": {"encoding": "audio/pcm", "bits": 16}}},
         ["session.output.format.bits"]),
        ({"tools": [KNOWN_TOOL, {"name": "u", "priority": 1, "http": {"url": "u", "retry": 2}}]},
         ["session.tools[1].priority", "session.tools[1].http.retry"]),
        ({"tools": [{"name": "t", "dtmf_collected_arguments": [{"beep": True}]}]},
         ["session.tools[0].dtmf_collected_arguments[0].beep"]),
        ({"tools": "not a list", "input": 3}, []),  # wrong types are left for validation to report
    ],
)  # fmt: skip
def test_session_patch(session: dict[str, Any], dropped: list[str]) -> None:
    expected_rest = copy.deepcopy(session)
    assert drop_unknown_fields(session, SessionConfigPatch, "session", SESSION_PATCH_SHAPES) == dropped
    assert session == _without(expected_rest, dropped)


def test_session_config_keeps_what_the_engine_knows() -> None:
    data = {"agent_id": "a", "tools": [KNOWN_TOOL], "pre_connect_requests": [{"http": {"url": "u", "x": 1}}],
            "transfer_targets": []}  # fmt: skip
    assert drop_unknown_fields(data, SessionConfig) == ["pre_connect_requests[0].http.x", "transfer_targets"]
    assert data["tools"] == [KNOWN_TOOL]


def _without(data: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    for path in paths:
        parts = path.removeprefix("session.").replace("[", ".").replace("]", "").split(".")
        target: Any = data
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[parts[-1]]
    return data
