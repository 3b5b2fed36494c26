from __future__ import annotations

import httpx
import pytest

from tests.live_server import LiveServer

ROUTES = [
    ("GET", "/v1/agents"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents/agent_00000000000000000000000000000000"),
    ("PUT", "/v1/agents/agent_00000000000000000000000000000000"),
    ("DELETE", "/v1/agents/agent_00000000000000000000000000000000"),
    ("GET", "/v1/token"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_header_is_401_with_the_documented_body(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, path, json={})
    assert response.status_code == 401
    body = response.json()
    assert body["detail"] == "Missing authorization header" and body["code"] == "missing_authorization"


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("value", ["Bearer wrong-key", "wrong-key", "Bearer", "", "Basic dXNlcjpwYXNz"])
def test_invalid_key_is_401_unauthorized(anonymous: httpx.Client, method: str, path: str, value: str) -> None:
    response = anonymous.request(method, path, headers={"Authorization": value}, json={})
    assert response.status_code == 401
    assert _unauthorized(response.json())


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "BEARER   {}", "{}"])
@pytest.mark.parametrize("header_name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_raw_or_bearer_key_in_any_case(
    live_server: LiveServer, anonymous: httpx.Client, template: str, header_name: str
) -> None:
    response = anonymous.get("/v1/agents", headers={header_name: template.format(live_server.api_key)})
    assert response.status_code == 200, response.text


def test_a_revoked_key_stops_working(live_server: LiveServer, anonymous: httpx.Client) -> None:
    key = live_server.create_api_key("revocation")
    headers = {"Authorization": f"Bearer {key}"}
    assert anonymous.get("/v1/agents", headers=headers).status_code == 200
    live_server.cli("keys", "revoke", key[:12])
    response = anonymous.get("/v1/agents", headers=headers)
    assert response.status_code == 401 and _unauthorized(response.json())


def test_healthz_needs_no_key(anonymous: httpx.Client) -> None:
    response = anonymous.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def _unauthorized(body: dict[str, object]) -> bool:
    return body["detail"] == body["message"] == "Unauthorized" and body["code"] == "unauthorized"
