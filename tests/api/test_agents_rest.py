from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.api.conftest import agent_body
from tests.live_server import LiveServer

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _agent_not_found(response: httpx.Response) -> bool:
    body = response.json()
    return body["detail"] == body["message"] == "Agent not found" and body["code"] == "agent_not_found"


def _create(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/agents", json=agent_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_full_record_without_secrets(client: httpx.Client) -> None:
    record = _create(
        client, llm=[{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": "sk-x"}]
    )
    assert re.fullmatch(r"agent_[0-9a-f]{32}", record["id"])
    assert record["name"] == "Support agent"
    assert record["voice"] == {"voice_id": "ivy"} and record["output"]["voice"] == "ivy"
    assert record["greeting"] == "Hi, how can I help?"
    assert record["input"]["format"] == {"encoding": "audio/pcm", "sample_rate": 24000}
    header = record["tools"][0]["http"]["headers"][0]
    assert set(header) == {"name", "last_set_at"} and header["name"] == "Authorization"
    assert TIMESTAMP.match(header["last_set_at"])
    assert (
        record["tools"][0]["execution_mode"] == "interactive" and record["tools"][0]["timeout_seconds"] == 120
    )
    assert record["llm"] == [{"base_url": "https://llm.example.com/v1", "model": "m"}]
    assert "tool-secret-1" not in str(record) and "sk-x" not in str(record)
    assert TIMESTAMP.match(record["created_at"]) and record["created_at"] == record["updated_at"]


def test_minimal_agent_and_bare_string_voice(client: httpx.Client) -> None:
    response = client.post("/v1/agents", json={"name": "n", "system_prompt": "p", "voice": "james"})
    assert response.status_code == 201
    record = response.json()
    assert record["voice"] == {"voice_id": "james"} and record["tools"] == [] and record["llm"] == []
    assert record["greeting"] is None


def test_get_returns_what_create_returned(client: httpx.Client) -> None:
    record = _create(client)
    response = client.get(f"/v1/agents/{record['id']}")
    assert response.status_code == 200 and response.json() == record


def test_list_is_an_envelope_of_full_records_newest_first(live_server: LiveServer) -> None:
    with live_server.client(
        headers=live_server.auth_headers(live_server.create_api_key("listing"))
    ) as client:
        empty = {"agents": [], "has_more": False, "response_metadata": {"next_cursor": ""}}
        assert client.get("/v1/agents").json() == empty
        first, second, third = (_create(client, name=f"agent {i}") for i in range(3))
        response = client.get("/v1/agents")
    assert response.status_code == 200
    page = response.json()
    assert page["agents"] == [third, second, first]
    assert page["has_more"] is False and page["response_metadata"] == {"next_cursor": ""}


def test_put_is_a_partial_update(client: httpx.Client) -> None:
    record = _create(client)
    response = client.put(f"/v1/agents/{record['id']}", json={"name": "Renamed"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Renamed"
    for field in ("system_prompt", "voice", "greeting", "input", "output", "tools", "llm", "created_at"):
        assert updated[field] == record[field]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(record["updated_at"])
    assert client.get(f"/v1/agents/{record['id']}").json() == updated
    listed = {item["id"]: item for item in client.get("/v1/agents").json()["agents"]}
    assert listed[record["id"]]["name"] == "Renamed"


def test_put_empty_object_changes_nothing_but_updated_at(client: httpx.Client) -> None:
    record = _create(client)
    updated = client.put(f"/v1/agents/{record['id']}", json={}).json()
    assert {k: v for k, v in updated.items() if k != "updated_at"} == {
        k: v for k, v in record.items() if k != "updated_at"
    }


def test_tools_replace_the_list_and_header_secrets_follow_the_rules(
    client: httpx.Client, live_server: LiveServer
) -> None:
    record = _create(client)
    agent_id = record["id"]
    original = record["tools"][0]["http"]["headers"][0]["last_set_at"]
    tools = [
        {
            "name": "lookup_order",
            "http": {
                "url": "https://api.example.com/orders/v2",
                "headers": [{"name": "Authorization"}, {"name": "X-Extra", "value": "extra-secret"}],
            },
        },
        {"name": "client_tool", "execution_mode": "hold"},
    ]
    updated = client.put(f"/v1/agents/{agent_id}", json={"tools": tools}).json()
    assert [t["name"] for t in updated["tools"]] == ["lookup_order", "client_tool"]
    headers = updated["tools"][0]["http"]["headers"]
    assert [h["name"] for h in headers] == ["Authorization", "X-Extra"]
    assert all(set(h) == {"name", "last_set_at"} for h in headers)
    assert headers[0]["last_set_at"] == original  # kept, not re-set

    # A record read back can be sent again unchanged: a header without a value keeps the stored one.
    resent = client.put(f"/v1/agents/{agent_id}", json={"tools": updated["tools"]})
    assert resent.status_code == 200, resent.text
    assert resent.json()["tools"] == updated["tools"]

    removed = [{"name": "lookup_order", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "Authorization", "remove": True}, {"name": "X-Extra"}]}}]  # fmt: skip
    after = client.put(f"/v1/agents/{agent_id}", json={"tools": removed}).json()
    assert [h["name"] for h in after["tools"][0]["http"]["headers"]] == ["X-Extra"]

    rotated = [{"name": "lookup_order", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "X-Extra", "value": "rotated"}]}}]  # fmt: skip
    after = client.put(f"/v1/agents/{agent_id}", json={"tools": rotated}).json()
    assert after["tools"][0]["http"]["headers"][0]["last_set_at"] > headers[1]["last_set_at"]
    assert "rotated" not in str(after)


def test_keeping_an_unknown_header_secret_is_422_and_stores_nothing(client: httpx.Client) -> None:
    record = _create(client)
    tools = [{"name": "other_tool", "http": {"url": "https://api.example.com/o", "headers": [
        {"name": "Authorization"}]}}]  # fmt: skip
    response = client.put(f"/v1/agents/{record['id']}", json={"name": "changed", "tools": tools})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["loc"] == ["body", "tools", 0, "http", "headers", 0, "value"]
    assert body["code"] == "invalid_value" and body["param"] == "tools[0].http.headers[0].value"
    assert client.get(f"/v1/agents/{record['id']}").json() == record


def test_llm_empty_list_clears_and_omitted_keeps(client: httpx.Client) -> None:
    record = _create(client, llm=[{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": "k"}])
    kept = client.put(f"/v1/agents/{record['id']}", json={"system_prompt": "x"}).json()
    assert kept["llm"] == record["llm"]
    cleared = client.put(f"/v1/agents/{record['id']}", json={"llm": []}).json()
    assert cleared["llm"] == []


def test_delete_is_204_without_body_then_404_everywhere(client: httpx.Client) -> None:
    record = _create(client)
    path = f"/v1/agents/{record['id']}"
    response = client.delete(path)
    assert response.status_code == 204 and response.content == b""
    for method in ("GET", "PUT", "DELETE"):
        gone = client.request(method, path, json={"name": "x"})
        assert gone.status_code == 404 and _agent_not_found(gone)
    assert record["id"] not in {item["id"] for item in client.get("/v1/agents").json()["agents"]}


@pytest.mark.parametrize(
    "agent_id",
    [
        "agent_00000000000000000000000000000000",
        "7ad24396-b822-4dca-871a-be9cc4781cf9",
        "not-an-id",
        "x" * 300,
        "%27%20OR%20%271%27%3D%271",
        "%00",
        "%F0%9F%98%80",
        "..%2F..%2Fetc",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_or_malformed_ids_are_404(client: httpx.Client, agent_id: str, method: str) -> None:
    response = client.request(method, f"/v1/agents/{agent_id}", json={"name": "x"})
    assert response.status_code == 404
    assert response.json()["detail"] in ("Agent not found", "Not found")


def test_projects_are_isolated(live_server: LiveServer) -> None:
    key_a = live_server.create_api_key("project-a")
    key_b = live_server.create_api_key("project-b")
    key_a2 = live_server.create_api_key("project-a")
    with (
        live_server.client(headers=live_server.auth_headers(key_a)) as a,
        live_server.client(headers=live_server.auth_headers(key_b)) as b,
        live_server.client(headers=live_server.auth_headers(key_a2)) as a2,
    ):
        record = _create(a)
        path = f"/v1/agents/{record['id']}"
        assert record["id"] not in {item["id"] for item in b.get("/v1/agents").json()["agents"]}
        assert b.get(path).status_code == 404 and _agent_not_found(b.get(path))
        assert _agent_not_found(b.put(path, json={"name": "stolen"}))
        assert _agent_not_found(b.delete(path))
        assert a.get(path).json() == record  # untouched
        assert a2.get(path).json() == record  # another key of the same project sees it
        assert [item["id"] for item in a2.get("/v1/agents").json()["agents"]] == [record["id"]]
