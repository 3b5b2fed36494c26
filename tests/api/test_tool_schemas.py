"""Tool ``parameters`` are checked at the door (issue #19): a malformed JSON Schema is a 422 naming the
tool's parameters, instead of an agent whose every reply fails on the embedded LLM."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import agent_body
from voxgate.protocol.tool_parameters import tool_parameters_refusal

VALID = [
    {},
    {"type": "object"},
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "items": [{"type": "string"}]},
    {"type": "object", "properties": {"n": {"type": "integer", "format": "custom-format"}}, "x-extra": 1},
]
INVALID = [
    ({"type": "object", "properties": ["id"]}, "parameters.properties"),
    ({"type": "object", "required": 7}, "parameters.required"),
    ({"type": "object", "properties": {"id": {"type": "strin"}}}, "parameters.properties.id.type"),
    ({"type": "string"}, '"type": "object"'),
    ({"properties": {"id": {"type": "string"}}}, '"type": "object"'),
    ({"$schema": "http://127.0.0.1:9/schema", "type": "object"}, "$schema"),
]


@pytest.mark.parametrize("parameters", VALID)
def test_valid_object_schemas_are_accepted(parameters: dict[str, Any]) -> None:
    assert tool_parameters_refusal(parameters) is None


@pytest.mark.parametrize(("parameters", "named"), INVALID)
def test_malformed_schemas_are_refused_naming_the_problem(parameters: dict[str, Any], named: str) -> None:
    refusal = tool_parameters_refusal(parameters)
    assert refusal is not None and named in refusal


def _tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"name": "lookup", "description": "Look something up", "parameters": parameters}


@pytest.mark.parametrize(("parameters", "named"), INVALID)
def test_create_with_a_malformed_schema_is_422_naming_the_parameters(
    client: httpx.Client, parameters: dict[str, Any], named: str
) -> None:
    response = client.post("/v1/agents", json=agent_body(tools=[_tool(parameters)]))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_value" and body["param"] == "tools[0].parameters"
    assert named in body["message"]


def test_update_with_a_malformed_schema_is_422_and_changes_nothing(client: httpx.Client) -> None:
    record = client.post("/v1/agents", json=agent_body(tools=[_tool({"type": "object"})])).json()
    bad = [_tool({"type": "object"}), {**_tool({"type": "object", "required": 7}), "name": "other"}]
    response = client.put(f"/v1/agents/{record['id']}", json={"tools": bad})
    assert response.status_code == 422 and response.json()["param"] == "tools[1].parameters"
    assert client.get(f"/v1/agents/{record['id']}").json() == record


def test_valid_schemas_are_stored_as_sent(client: httpx.Client) -> None:
    tools = [{**_tool(p), "name": f"tool_{i}"} for i, p in enumerate(VALID)]
    response = client.post("/v1/agents", json=agent_body(tools=tools))
    assert response.status_code == 201, response.text
    assert [t["parameters"] for t in response.json()["tools"]] == VALID
