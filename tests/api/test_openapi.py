"""OpenAPI documents every REST route; a bounded schemathesis run finds no 5xx and no response that
breaks the documented schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory

REST_OPERATIONS = {
    ("get", "/healthz"): {"200", "503"},
    ("get", "/v1/token"): {"200", "401", "422"},
    ("get", "/v1/agents"): {"200", "401", "422"},
    ("post", "/v1/tokens"): {"200", "401", "422"},
    ("post", "/v1/agents"): {"201", "400", "401", "413", "422"},
    ("get", "/v1/agents/{agent_id}"): {"200", "401", "404"},
    ("put", "/v1/agents/{agent_id}"): {"200", "400", "401", "404", "413", "422"},
    ("delete", "/v1/agents/{agent_id}"): {"204", "401", "404"},
}
MAX_EXAMPLES = 10


def test_every_rest_route_is_documented_with_its_errors(anonymous: httpx.Client) -> None:
    schema = anonymous.get("/openapi.json").json()
    for (method, path), statuses in REST_OPERATIONS.items():
        operation = schema["paths"][path][method]
        assert statuses <= set(operation["responses"]), (method, path)
        for status in statuses - {"204"}:
            content = operation["responses"][status]["content"]["application/json"]
            assert "$ref" in content["schema"] or "items" in content["schema"], (method, path, status)
    for method, path in (("post", "/v1/agents"), ("put", "/v1/agents/{agent_id}")):
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].split("/")[-1] in schema["components"]["schemas"]
    names = set(schema["components"]["schemas"])
    assert {"AgentCreate", "AgentUpdate", "AgentRecord", "TokenResponse", "ValidationErrorResponse"} <= names
    assert schema["components"]["securitySchemes"]


def test_the_hosted_shapes_are_described(anonymous: httpx.Client) -> None:
    schema = anonymous.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def required(name: str) -> set[str]:
        return set(components[name]["required"])

    listed = schema["paths"]["/v1/agents"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listed["schema"]["$ref"].endswith("/AgentList")
    assert required("AgentList") == {"agents", "has_more", "response_metadata"}
    assert required("ResponseMetadata") == {"next_cursor"}
    assert {p["name"] for p in schema["paths"]["/v1/agents"]["get"]["parameters"]} == {"limit", "cursor"}
    envelope = {"code", "message", "param", "request_id", "errors", "detail"}
    assert required("ErrorResponse") == envelope and required("ValidationErrorResponse") == envelope
    assert {"id", "name"} <= required("ToolRecord")
    assert components["AgentRecord"]["properties"]["tools"]["items"]["$ref"].endswith("/ToolRecord")
    assert set(components["HttpHeaderRecord"]["properties"]) == {"name", "last_set_at"}  # never a value
    assert set(components["LLMEndpointRecord"]["properties"]) == {"base_url", "model"}
    for hosted_field in ("pre_connect_requests", "transfer_targets", "caller_id", "outbound_trunk_id"):
        assert hosted_field in components["AgentRecord"]["properties"]
        assert hosted_field in components["AgentCreate"]["properties"]
    tool = components["ToolSpec"]["properties"]
    assert {"id", "response_instructions", "dtmf_collected_arguments", "timeout_seconds"} <= set(tool)
    token = schema["paths"]["/v1/tokens"]["post"]["responses"]["200"]["content"]["application/json"]
    assert token["schema"]["$ref"].endswith("/CreatedToken")
    assert (
        set(components["CreatedToken"]["properties"]) == required("CreatedToken") == {"token", "expires_at"}
    )


def test_schemathesis_finds_no_server_error_or_schema_violation(
    live_server_factory: ServerFactory, tmp_path: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    server = live_server_factory()
    command = [
        st, "run", f"{server.base_url}/openapi.json",
        "--header", f"Authorization: Bearer {server.api_key}",
        "--include-path-regex", "^/(healthz|v1/tokens?|v1/agents)",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "20260101", "--workers", "1",
        "--generation-database", "none", "--continue-on-failure", "--no-color",
        "--request-timeout", "10",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in server.log_text()
