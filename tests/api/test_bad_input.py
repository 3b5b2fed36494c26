"""Bad input always gets a clear 4xx in the documented JSON shape, and nothing is stored half-way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import agent_body
from tests.live_server import LiveServer
from voxgate.api.rest_errors import param_of

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def isolated(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client in its own project, so 'nothing was stored' can be checked with the list."""
    with live_server.client(headers=live_server.auth_headers(live_server.create_api_key())) as client:
        yield client


def _assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    assert "detail" in body and body["request_id"].startswith("req_")
    assert response.headers["x-request-id"] == body["request_id"]
    assert set(body) == {"code", "message", "param", "request_id", "errors", "detail"}
    return body


def _http_tool(url: str, headers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return agent_body(tools=[{"name": "t", "http": {"url": url, "headers": headers or []}}])


def _byo_llm(base_url: str) -> dict[str, Any]:
    return agent_body(llm=[{"base_url": base_url, "model": "m", "api_key": "k"}])


PRIVATE_URLS = (
    "https://127.0.0.1/", "https://10.0.0.1/", "https://169.254.169.254/", "https://[::1]/",
    "https://[::ffff:127.0.0.1]/", "https://[::ffff:a9fe:a9fe]/", "https://2130706433/", "https://0177.0.0.1/",
    "https://0x7f.1/", "https://127.1/", "https://localhost./", "https://0.0.0.0/", "https://[fd00:ec2::254]/",
    "https://[64:ff9b::a00:1]/", "https://metadata.google.internal/",
)  # fmt: skip
"""Literal private destinations in the spellings a resolver accepts (SSRF, issue #19 item 2)."""
TRANSPORT_HEADERS = ("Host", "Content-Length", "transfer-encoding", "Connection", "Upgrade", "Keep-Alive",
                     "TE", "Trailer", "Proxy-Authorization")  # fmt: skip
"""Headers of the HTTP transport that a tool may not set (issue #19 item 9)."""


def _locs(body: dict[str, Any]) -> list[list[Any]]:
    return [item["loc"] for item in body["detail"]]


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": }', b"not json", b"", b"   ", b"\xff\xfe\x00garbage", b'{"a": NaN}', b'{"a": Infinity}',
     b"[" * 100_000, b'{"name": "x"} trailing'],
)  # fmt: skip
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_malformed_json_is_400(isolated: httpx.Client, raw: bytes, method: str) -> None:
    path = "/v1/agents"
    if method == "PUT":
        path = f"/v1/agents/{isolated.post('/v1/agents', json=agent_body()).json()['id']}"
    response = isolated.request(method, path, content=raw, headers=JSON)
    body = _assert_error_shape(response, 400, "invalid_request")
    assert isinstance(body["detail"], str) and "JSON" in body["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"system_prompt": "p", "voice": {"voice_id": "ivy"}}, ["body", "name"]),
        ({"name": "n", "voice": {"voice_id": "ivy"}}, ["body", "system_prompt"]),
        ({"name": "n", "system_prompt": "p"}, ["body", "voice"]),
        (agent_body(name=123), ["body", "name"]),
        (agent_body(name=""), ["body", "name"]),
        (agent_body(voice={"voice_id": "nobody"}), ["body", "voice", "voice_id"]),
        (agent_body(voice={"voice_id": "sam"}), ["body", "voice", "voice_id"]),
        (agent_body(output={"volume": 101}), ["body", "output", "volume"]),
        (agent_body(output={"format": {"encoding": "audio/mp3"}}), ["body", "output", "format", "encoding"]),
        (agent_body(input={"keyterms": ["k"] * 101}), ["body", "input", "keyterms"]),
        (agent_body(tools="nope"), ["body", "tools"]),
        (agent_body(tools=[{"name": "t", "timeout_seconds": 0}]), ["body", "tools", 0, "timeout_seconds"]),
        (agent_body(tools=[{"name": "t", "execution_mode": "x"}]), ["body", "tools", 0, "execution_mode"]),
        (_http_tool("http://example.com"), ["body", "tools", 0, "http", "url"]),
        (_http_tool("https://127.0.0.1/x"), ["body", "tools", 0, "http", "url"]),
        (_http_tool("https://10.1.2.3/x"), ["body", "tools", 0, "http", "url"]),
        (_http_tool("https://[::1]/x"), ["body", "tools", 0, "http", "url"]),
        (_http_tool("https://localhost/x"), ["body", "tools", 0, "http", "url"]),
        (agent_body(tools=[{"name": "t"}, {"name": "t"}]), ["body", "tools"]),
        (_http_tool("https://a.example.com", [{"name": "A"}]),
         ["body", "tools", 0, "http", "headers", 0, "value"]),
        (agent_body(llm=[{"base_url": "http://x.example.com", "model": "m", "api_key": "k"}]),
         ["body", "llm", 0, "base_url"]),
        (agent_body(llm=[{"base_url": "https://a.example.com", "model": "m"}] * 2), ["body", "llm"]),
        *[(_byo_llm(url), ["body", "llm", 0, "base_url"]) for url in PRIVATE_URLS],
        *[(_http_tool(url + "x"), ["body", "tools", 0, "http", "url"]) for url in PRIVATE_URLS],
        *[(_http_tool("https://a.example.com", [{"name": name, "value": "1"}]),
           ["body", "tools", 0, "http", "headers", 0, "name"]) for name in TRANSPORT_HEADERS],
        (agent_body(system_prompt="x" * 100_001), ["body", "system_prompt"]),
        (agent_body(name="bad\u0000name"), ["body", "name"]),
        ([agent_body()], ["body"]),
        ("a string", ["body"]),
        (42, ["body"]),
    ],
)  # fmt: skip
def test_invalid_bodies_are_422_naming_the_field(isolated: httpx.Client, body: Any, loc: list[Any]) -> None:
    response = isolated.post("/v1/agents", json=body)
    result = _assert_error_shape(response, 422, "invalid_value")
    assert loc in _locs(result), result
    assert all({"loc", "msg", "type"} <= set(item) for item in result["detail"])
    assert result["errors"] and (result["param"] or "") == param_of(result["detail"][0]["loc"])
    assert isolated.get("/v1/agents").json()["agents"] == []


def test_deeply_nested_body_is_400_before_parsing(isolated: httpx.Client) -> None:
    """A valid agent whose tool schema nests 200 levels: refused before parsing, never stored or a 500."""
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"x": schema}}
    body = agent_body(tools=[{"name": "t", "parameters": schema}])
    response = isolated.post("/v1/agents", json=body)
    result = _assert_error_shape(response, 400, "invalid_request")
    assert "nested deeper than" in result["message"]
    assert isolated.get("/v1/agents").json()["agents"] == []


def test_json_null_body_is_422(isolated: httpx.Client) -> None:
    response = isolated.post("/v1/agents", content=b"null", headers=JSON)
    assert ["body"] in _locs(_assert_error_shape(response, 422, "invalid_value"))


def test_lone_surrogates_are_422(isolated: httpx.Client) -> None:
    raw = b'{"name": "\\ud800", "system_prompt": "p", "voice": "ivy"}'
    response = isolated.post("/v1/agents", content=raw, headers=JSON)
    assert ["body", "name"] in _locs(_assert_error_shape(response, 422, "invalid_value"))
    assert isolated.get("/v1/agents").json()["agents"] == []


def test_invalid_update_is_422_and_changes_nothing(isolated: httpx.Client) -> None:
    record = isolated.post("/v1/agents", json=agent_body()).json()
    path = f"/v1/agents/{record['id']}"
    for body, loc in [
        ({"name": None}, ["body", "name"]),
        ({"voice": {"voice_id": "nobody"}}, ["body", "voice", "voice_id"]),
        ({"tools": [{"name": "bad name!"}]}, ["body", "tools", 0, "name"]),
        ({"system_prompt": 5}, ["body", "system_prompt"]),
    ]:
        response = isolated.put(path, json=body)
        assert loc in _locs(_assert_error_shape(response, 422, "invalid_value")), body
    assert isolated.get(path).json() == record


@pytest.mark.parametrize(
    "text",
    [
        "Robert'); DROP TABLE agents;--",
        "' OR '1'='1",
        "日本語のエージェント 🤖 — ñ, ü, ß",
        "\u202eright-to-left\u202c",
        "<script>alert(1)</script>",
        "line\nbreak\ttab",
    ],
)
def test_unicode_and_sql_looking_strings_round_trip(client: httpx.Client, text: str) -> None:
    created = client.post("/v1/agents", json=agent_body(name=text, system_prompt=text, greeting=text))
    assert created.status_code == 201, created.text
    record = client.get(f"/v1/agents/{created.json()['id']}").json()
    assert record["name"] == record["system_prompt"] == record["greeting"] == text


def test_body_over_the_cap_is_413_by_content_length(isolated: httpx.Client) -> None:
    huge = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    response = isolated.post("/v1/agents", content=huge, headers=JSON)
    _assert_error_shape(response, 413, "payload_too_large")
    assert isolated.get("/v1/agents").json()["agents"] == []


def test_chunked_body_over_the_cap_is_413(isolated: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "n", "system_prompt": "'
        for _ in range(40):
            yield b"y" * 32_768
        yield b'", "voice": "ivy"}'

    response = isolated.post("/v1/agents", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    _assert_error_shape(response, 413, "payload_too_large")
    assert isolated.get("/v1/agents").json()["agents"] == []


def test_a_large_body_under_the_cap_is_judged_on_its_content(isolated: httpx.Client) -> None:
    response = isolated.post("/v1/agents", json=agent_body(system_prompt="z" * 900_000))
    assert ["body", "system_prompt"] in _locs(_assert_error_shape(response, 422, "invalid_value"))


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/v1/agents"), ("DELETE", "/v1/agents"), ("POST", "/v1/token"),
     ("PATCH", "/v1/agents/agent_x"), ("POST", "/healthz")],
)  # fmt: skip
def test_wrong_method_is_405(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    _assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers.get("allow")


@pytest.mark.parametrize("path", ["/v1/agent", "/v2/agents", "/nope", "/v1/agents/a/b", "/v1/tokenz"])
def test_unknown_route_is_404(client: httpx.Client, path: str) -> None:
    body = _assert_error_shape(client.get(path), 404, "not_found")
    assert body["detail"] == "Not found"
