"""The hosted REST dialect (HOSTED.md §1-§3) through a client written against its shapes (hosted_client)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.hosted_client import HostedApiError, HostedClient
from tests.live_server import LiveServer

TOOL_ID = re.compile(r"^tool_[0-9a-f]{24}$")
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")


@pytest.fixture
def hosted(live_server: LiveServer) -> Iterator[HostedClient]:
    """A client in its own project, so list contents are known."""
    key = live_server.create_api_key()
    with live_server.client(headers=live_server.auth_headers(key)) as http:
        yield HostedClient(http)


def _agent(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Front desk",
        "system_prompt": "Book tables for {{customer_name}}.",
        "greeting": "Hello {{customer_name}}!",
        "voice": {"voice_id": "claire"},
        "input": {"type": "audio", "language_codes": ["en", "fr"], "noise_gate": {"level": 3}},
        "output": {"type": "audio", "voice": "claire"},
        "tools": [
            {
                "name": "book_table",
                "description": "Book a table",
                "parameters": {"type": "object", "properties": {"time": {"type": "string"}}},
                "timeout_seconds": 30,
                "execution_mode": "hold",
                "response_instructions": {"success": "Confirm the booking time back to the caller."},
                "dtmf_collected_arguments": [
                    {"parameter_name": "pin", "prompt": "Type your PIN", "min_digits": 4, "max_digits": 6,
                     "terminator": "#", "timeout_seconds": 20, "sensitive": True},
                ],
                "http": {
                    "url": "https://api.example.com/bookings",
                    "http_method": "POST",
                    "headers": [{"name": "X-Api-Key", "value": "tool-secret"},
                                {"name": "X-Tenant", "value": "t1"}],
                    "retry_policy": {"attempts": 2},
                },
                "priority": "high",
            },
            {"name": "client_side", "description": "Runs in the client"},
        ],
        "pre_connect_requests": [
            {
                "http": {
                    "url": "https://crm.example.com/lookup",
                    "http_method": "GET",
                    "headers": [{"name": "Authorization", "value": "Bearer crm-secret"}],
                },
                "sends": ["caller_number", "agent_id"],
                "returns": [{"name": "customer_name", "path": "$.name", "default": "there"}],
                "timeout_ms": 800,
                "allow_overrides": ["customer_name"],
            }
        ],
        "transfer_targets": [
            {"name": "manager", "kind": "human", "phone_number": "+15550100", "mode": "warm"}
        ],
        "caller_id": "+15550199",
        "outbound_trunk_id": "trunk_1",
        "llm": [{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": "llm-secret"}],
        "metadata": {"team": "support", "tags": ["a", "b"]},
    }  # fmt: skip
    body.update(overrides)
    return body


def test_agent_lifecycle_in_the_hosted_shapes(hosted: HostedClient) -> None:
    created = hosted.create_agent(_agent())
    raw = created.model_dump()
    assert "tool-secret" not in str(raw) and "crm-secret" not in str(raw) and "llm-secret" not in str(raw)
    booking, client_tool = created.tools
    assert TOOL_ID.match(booking.id) and TOOL_ID.match(client_tool.id) and booking.id != client_tool.id
    assert booking.timeout_seconds == 30 and booking.execution_mode == "hold"
    assert booking.response_instructions is not None
    assert booking.response_instructions.success == "Confirm the booking time back to the caller."
    assert booking.dtmf_collected_arguments[0].terminator == "#"
    assert booking.http is not None and [h.name for h in booking.http.headers] == ["X-Api-Key", "X-Tenant"]
    # Unknown fields at every level come back as sent.
    assert raw["metadata"] == {"team": "support", "tags": ["a", "b"]}
    assert booking.model_extra == {"priority": "high"}
    assert booking.http.model_dump()["headers"][0].keys() == {"name", "last_set_at"}
    assert hosted.http.get(f"/v1/agents/{created.id}").json()["tools"][0]["http"]["retry_policy"] == {
        "attempts": 2
    }
    assert created.input["language_codes"] == ["en", "fr"] and created.input["noise_gate"] == {"level": 3}
    assert created.pre_connect_requests[0].http.headers[0].name == "Authorization"
    assert created.pre_connect_requests[0].returns[0].default == "there"
    assert created.transfer_targets[0].mode == "warm" and created.caller_id == "+15550199"
    assert created.llm[0].model == "m"
    assert hosted.get_agent(created.id) == created

    # Update: the tool keeps its id while its name is kept; headers kept / removed / set.
    last_set = {h.name: h.last_set_at for h in booking.http.headers}
    tools = [
        {"name": "brand_new"},
        {
            "name": "book_table",
            "http": {"url": "https://api.example.com/bookings/v2", "headers": [
                {"name": "X-Api-Key"}, {"name": "X-Tenant", "remove": True},
                {"name": "X-Trace", "value": "on"}]},
        },
        {"id": client_tool.id, "name": "client_side_renamed"},
    ]  # fmt: skip
    updated = hosted.update_agent(created.id, {"tools": tools, "metadata": {"team": "sales"}, "rating": 5})
    new_tool, kept_tool, renamed = updated.tools
    assert kept_tool.id == booking.id and renamed.id == client_tool.id
    assert TOOL_ID.match(new_tool.id) and new_tool.id not in (booking.id, client_tool.id)
    assert kept_tool.http is not None
    assert [h.name for h in kept_tool.http.headers] == ["X-Api-Key", "X-Trace"]
    assert kept_tool.http.headers[0].last_set_at == last_set["X-Api-Key"]
    assert updated.model_extra == {"metadata": {"team": "sales"}, "rating": 5}
    assert updated.created_at == created.created_at and updated.updated_at > created.updated_at
    # A record read back can be sent again as it is (ids, timestamps, header reads and all).
    resent = hosted.update_agent(created.id, hosted.http.get(f"/v1/agents/{created.id}").json())
    assert resent.tools == updated.tools and resent.pre_connect_requests == updated.pre_connect_requests

    hosted.delete_agent(created.id)
    with pytest.raises(HostedApiError) as caught:
        hosted.get_agent(created.id)
    assert caught.value.status == 404 and caught.value.error.code == "agent_not_found"
    assert caught.value.error.detail == "Agent not found"


def test_list_pages_through_every_agent_newest_first(hosted: HostedClient) -> None:
    ids = [hosted.create_agent(_agent(name=f"agent {i}")).id for i in range(7)]
    first = hosted.list_agents(limit=3)
    assert first.has_more and first.response_metadata.next_cursor
    assert [a.id for a in first.agents] == ids[::-1][:3]
    assert first.agents[0].tools[0].http is not None  # full records
    assert [a.id for a in hosted.iterate_agents(limit=3)] == ids[::-1]
    assert [a.id for a in hosted.iterate_agents(limit=7)] == ids[::-1]
    assert [a.id for a in hosted.list_agents().agents] == ids[::-1]  # default limit 50


def test_a_cursor_is_stable_under_concurrent_inserts_and_deletes(hosted: HostedClient) -> None:
    ids = [hosted.create_agent(_agent(name=f"agent {i}")).id for i in range(5)]
    first = hosted.list_agents(limit=2)
    newer = hosted.create_agent(_agent(name="inserted meanwhile")).id
    hosted.delete_agent(ids[4])  # already seen on the first page
    rest = hosted.list_agents(limit=10, cursor=first.response_metadata.next_cursor)
    assert [a.id for a in rest.agents] == [ids[2], ids[1], ids[0]]
    assert newer not in [a.id for a in rest.agents] and not rest.has_more
    assert rest.response_metadata.next_cursor == ""


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!", "e30", "eyJ2IjoxfQ", "x" * 600, "eyJ2IjoxLCJzIjoiIiwidCI6Im5vdyIsImkiOjF9"],
)
def test_garbage_cursor_is_422_in_the_envelope(hosted: HostedClient, cursor: str) -> None:
    with pytest.raises(HostedApiError) as caught:
        hosted.list_agents(cursor=cursor)
    _assert_invalid(caught.value, "cursor")


def test_cursor_of_another_project_is_refused(hosted: HostedClient, live_server: LiveServer) -> None:
    for i in range(3):
        hosted.create_agent(_agent(name=f"agent {i}"))
    cursor = hosted.list_agents(limit=1).response_metadata.next_cursor
    with live_server.client(headers=live_server.auth_headers(live_server.create_api_key())) as http:
        with pytest.raises(HostedApiError) as caught:
            HostedClient(http).list_agents(cursor=cursor)
    _assert_invalid(caught.value, "cursor")
    assert "another" in caught.value.error.message


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_limit_out_of_range_is_422(hosted: HostedClient, limit: int) -> None:
    with pytest.raises(HostedApiError) as caught:
        hosted.list_agents(limit=limit)
    _assert_invalid(caught.value, "limit")


def _tool(**fields: Any) -> dict[str, Any]:
    return _agent(tools=[{"name": "t", **fields}])


def _pre_connect(url: str = "https://crm.example.com/x", **fields: Any) -> dict[str, Any]:
    return {"http": {"url": url}, **fields}


def _dtmf(**fields: Any) -> dict[str, Any]:
    return {"parameter_name": "pin", "prompt": "PIN", "min_digits": 4, "max_digits": 6, **fields}


DTMF = "tools[0].dtmf_collected_arguments[0]"
PRE = "pre_connect_requests[0]"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_tool(timeout_seconds=0), "tools[0].timeout_seconds"),
        (_tool(timeout_seconds=301), "tools[0].timeout_seconds"),
        (_tool(execution_mode="later"), "tools[0].execution_mode"),
        (_tool(dtmf_collected_arguments=[_dtmf(min_digits=70)]), f"{DTMF}.min_digits"),
        (_tool(dtmf_collected_arguments=[_dtmf(max_digits=0)]), f"{DTMF}.max_digits"),
        (_tool(dtmf_collected_arguments=[_dtmf(min_digits=8, max_digits=4)]), DTMF),
        (_tool(dtmf_collected_arguments=[_dtmf(terminator="##")]), f"{DTMF}.terminator"),
        (_tool(dtmf_collected_arguments=[_dtmf(terminator="a")]), f"{DTMF}.terminator"),
        (_tool(dtmf_collected_arguments=[_dtmf(timeout_seconds=0)]), f"{DTMF}.timeout_seconds"),
        (_tool(response_instructions={"success": "x" * 501}), "tools[0].response_instructions.success"),
        (_agent(pre_connect_requests=[_pre_connect()] * 3), "pre_connect_requests"),
        (_agent(pre_connect_requests=[_pre_connect("https://10.0.0.7/crm")]), f"{PRE}.http.url"),
        (_agent(pre_connect_requests=[_pre_connect("https://127.0.0.1/crm")]), f"{PRE}.http.url"),
        (_agent(pre_connect_requests=[_pre_connect("http://crm.example.com/x")]), f"{PRE}.http.url"),
        (_agent(pre_connect_requests=[_pre_connect(timeout_ms=801)]), f"{PRE}.timeout_ms"),
        (_agent(transfer_targets=[{"name": "x", "kind": "robot"}]), "transfer_targets[0].kind"),
        (_agent(voice={"voice_id": "nobody"}), "voice.voice_id"),
        (_agent(tools=[{"name": "a", "id": "tool_1"}, {"name": "b", "id": "tool_1"}]), "tools"),
    ],
)
def test_invalid_values_of_known_fields_are_422_naming_the_field(
    hosted: HostedClient, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(HostedApiError) as caught:
        hosted.create_agent(body)
    _assert_invalid(caught.value, param)
    assert hosted.list_agents().agents == []


def test_pre_connect_header_secrets_follow_the_write_rules(hosted: HostedClient) -> None:
    created = hosted.create_agent(_agent())
    stored = created.pre_connect_requests[0].http.headers[0]
    same_host = {"http": {"url": "https://crm.example.com/v2", "headers": [{"name": "Authorization"}]}}
    kept = hosted.update_agent(created.id, {"pre_connect_requests": [same_host]})
    assert kept.pre_connect_requests[0].http.headers[0].last_set_at == stored.last_set_at
    new_host = {"http": {"url": "https://other.example.com/", "headers": [{"name": "Authorization"}]}}
    with pytest.raises(HostedApiError) as caught:  # a secret never follows to a new host
        hosted.update_agent(created.id, {"pre_connect_requests": [new_host]})
    _assert_invalid(caught.value, "pre_connect_requests[0].http.headers[0].value")


@pytest.mark.parametrize("voice", ["ivy", "claire", "mia", "pierre", "dmitri", "alba"])
def test_hosted_and_documented_voice_ids_are_accepted(hosted: HostedClient, voice: str) -> None:
    assert hosted.create_agent(_agent(voice={"voice_id": voice}, output={})).voice.voice_id == voice


def test_post_tokens(hosted: HostedClient) -> None:
    before = datetime.now(UTC)
    token = hosted.create_token({"expires_in_seconds": 120})
    expires_at = datetime.fromisoformat(token.expires_at.replace("Z", "+00:00"))
    assert token.token and before + timedelta(seconds=119) <= expires_at <= datetime.now(UTC) + timedelta(
        seconds=121
    )
    default = hosted.create_token()
    expires_at = datetime.fromisoformat(default.expires_at.replace("Z", "+00:00"))
    assert expires_at <= datetime.now(UTC) + timedelta(seconds=61)
    empty = hosted.http.post("/v1/tokens")  # no body at all
    assert empty.status_code == 200 and set(empty.json()) == {"token", "expires_at"}
    for bad in (0, 601, "soon"):
        with pytest.raises(HostedApiError) as caught:
            hosted.create_token({"expires_in_seconds": bad})
        _assert_invalid(caught.value, "expires_in_seconds")


def test_get_token_keeps_its_answer_and_adds_expires_at(hosted: HostedClient) -> None:
    body = hosted.http.get("/v1/token", params={"expires_in_seconds": 30}).json()
    assert set(body) == {"token", "expires_in_seconds", "expires_at"} and body["expires_in_seconds"] == 30


@pytest.mark.parametrize(
    ("headers", "code", "detail"),
    [({}, "missing_authorization", "Missing authorization header"),
     ({"Authorization": "Bearer nope"}, "unauthorized", "Unauthorized")],
)  # fmt: skip
def test_auth_errors_in_the_envelope(
    live_server: LiveServer, headers: dict[str, str], code: str, detail: str
) -> None:
    with httpx.Client(base_url=live_server.base_url, headers=headers) as http:
        with pytest.raises(HostedApiError) as caught:
            HostedClient(http).list_agents()
    assert caught.value.status == 401
    assert caught.value.error.code == code and caught.value.error.detail == detail
    assert caught.value.request_id_header == caught.value.error.request_id


def test_every_response_carries_a_request_id(hosted: HostedClient) -> None:
    first = hosted.http.get("/v1/agents").headers["x-request-id"]
    second = hosted.http.get("/v1/agents").headers["x-request-id"]
    assert REQUEST_ID.match(first) and REQUEST_ID.match(second) and first != second


def _assert_invalid(error: HostedApiError, param: str) -> None:
    assert error.status == 422, error
    assert error.error.code == "invalid_value" and error.error.param == param, error.error
    assert error.error.errors and error.error.errors[0].param == param
    assert REQUEST_ID.match(error.error.request_id) and error.request_id_header == error.error.request_id
