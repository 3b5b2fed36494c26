"""Webhooks over a real server: subscriptions (HOSTED.md §6), signed deliveries to a loopback receiver,
retries after a 500, the inline webhook of ``session.update``, and a receiver that never answers."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.history.conftest import deliveries_when, ended_session, open_client
from tests.history.webhook_receiver import HANG, WebhookReceiver
from tests.live_server import LiveServer
from tests.realtime.protocol_client import ProtocolClient

SECRET = "whsec-" + "x" * 40


async def _subscribe(server: LiveServer, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"events": ["session.started", "session.completed"], "secret": SECRET, **fields}
    async with server.async_client(headers=headers) as http:
        response = await http.post("/v1/webhook-subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _short_session(
    server: LiveServer, clients: list[ProtocolClient], headers: dict[str, str], **session: Any
) -> str:
    client = await open_client(server, clients, headers)
    await client.update(**(session or {"system_prompt": "Be brief."}))
    session_id = str((await client.wait_for("session.ready"))["session_id"])
    await client.send({"type": "session.end"})
    await client.wait_closed()
    return session_id


async def test_subscription_crud_keeps_the_secret_write_only(history_server: LiveServer) -> None:
    headers = history_server.auth_headers(history_server.create_api_key())
    created = await _subscribe(history_server, headers, url="https://hooks.example.com/voice")
    assert set(created) == {
        "id",
        "agent_id",
        "url",
        "events",
        "enabled",
        "secret_version",
        "created_at",
        "updated_at",
    }
    assert created["secret_version"] == 1 and created["enabled"] is True and created["agent_id"] is None
    path = f"/v1/webhook-subscriptions/{created['id']}"
    async with history_server.async_client(headers=headers) as http:
        renamed = (await http.patch(path, json={"url": "https://hooks.example.com/v2", "future": 1})).json()
        assert renamed["url"] == "https://hooks.example.com/v2" and renamed["secret_version"] == 1
        rotated = (await http.patch(path, json={"secret": "y" * 32, "enabled": False})).json()
        assert rotated["secret_version"] == 2 and rotated["enabled"] is False
        assert SECRET not in (await http.get(path)).text
        listed = (await http.get("/v1/webhook-subscriptions")).json()
        assert [s["id"] for s in listed["subscriptions"]] == [created["id"]] and listed["has_more"] is False

        invalid = {
            "url": {"url": "https://10.0.0.1/hook"},
            "events": {"events": ["session.exploded"]},
            "secret": {"secret": "too short"},
            "agent_id": {"agent_id": "agent_" + "0" * 32},
        }
        for param, change in invalid.items():
            body = {"url": "https://hooks.example.com/x", "events": ["session.completed"], "secret": SECRET}
            response = await http.post("/v1/webhook-subscriptions", json={**body, **change})
            assert response.status_code == 422 and response.json()["param"] == param, response.text
        missing = await http.post("/v1/webhook-subscriptions", json={"url": "https://hooks.example.com/x"})
        assert missing.status_code == 422 and {e["param"] for e in missing.json()["errors"]} == {
            "events",
            "secret",
        }

        others = history_server.auth_headers(history_server.create_api_key())
        assert (await http.get(path, headers=others)).status_code == 404
        assert (await http.delete(path)).status_code == 204
        assert (await http.get(path)).json()["code"] == "subscription_not_found"


async def test_deliveries_are_signed_and_retried_after_a_500(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    headers = history_server.auth_headers(history_server.create_api_key())
    with WebhookReceiver(SECRET, answers=[500]) as receiver:
        subscription = await _subscribe(history_server, headers, url=receiver.url)
        session_id = await _short_session(history_server, clients, headers)
        received = await receiver.wait_for(3)  # two events, one of them attempted twice
    failed = [r for r in received if r.answered == 500]
    assert len(failed) == 1  # whichever came first (they may be sent concurrently)
    retried = [r for r in received if r.delivery_id == failed[0].delivery_id]
    assert [r.answered for r in retried] == [500, 200] and retried[0].body == retried[1].body
    assert all(r.verified for r in received)  # X-AAI-Signature checks with the secret
    events = {r.event["type"]: r.event for r in received}
    assert set(events) == {"session.started", "session.completed"}
    completed = events["session.completed"]
    assert completed["data"]["id"] == session_id and completed["data"]["status"] == "ended"
    assert completed["data"]["public_close_reason"] == "client_ended" and completed["created_at"].endswith(
        "Z"
    )

    deliveries = await deliveries_when(
        history_server, session_id, lambda found: all(d["status"] == "delivered" for d in found), headers
    )
    async with history_server.async_client(headers=headers) as http:
        latest = (await http.get(f"/v1/sessions/{session_id}/webhook-deliveries/latest")).json()
    attempts = {d["id"]: d["attempt_count"] for d in deliveries}
    assert attempts[failed[0].delivery_id] == 2 and sorted(attempts.values()) == [1, 2]
    assert all(d["http_status_code"] == 200 for d in deliveries)
    assert {d["subscription_id"] for d in deliveries} == {subscription["id"]}
    by_event = {d["event_type"]: d for d in deliveries}
    assert latest["id"] == deliveries[0]["id"] == by_event["session.completed"]["id"]


async def test_inline_webhook_and_agent_scoped_subscriptions(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    headers = history_server.auth_headers(history_server.create_api_key())
    async with history_server.async_client(headers=headers) as http:
        agent = await http.post(
            "/v1/agents", json={"name": "a", "system_prompt": "Hi.", "voice": {"voice_id": "ivy"}}
        )
    agent_id = agent.json()["id"]
    inline_secret = "inline-" + "z" * 40
    with WebhookReceiver(SECRET) as scoped, WebhookReceiver(inline_secret) as inline:
        await _subscribe(history_server, headers, url=scoped.url, agent_id=agent_id)
        webhook = {"url": inline.url, "events": ["session.completed"], "secret": inline_secret}
        inline_id = await _short_session(
            history_server, clients, headers, system_prompt="Hi.", webhook=webhook
        )
        agent_session = await _short_session(history_server, clients, headers, agent_id=agent_id)
        received = await inline.wait_for(1)
        scoped_received = await scoped.wait_for(2)
    assert [r.event["type"] for r in received] == ["session.completed"] and received[0].verified
    assert received[0].event["data"]["id"] == inline_id
    assert {r.event["data"]["id"] for r in scoped_received} == {agent_session}  # not the inline session


async def test_a_receiver_that_never_answers_does_not_hold_up_sessions(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    headers = history_server.auth_headers(history_server.create_api_key())
    with WebhookReceiver(SECRET, answers=[HANG] * 10) as receiver:
        await _subscribe(history_server, headers, url=receiver.url)
        loop = asyncio.get_running_loop()
        began = loop.time()
        client = await open_client(history_server, clients, headers)
        await client.update(system_prompt="Be brief.", greeting="Hello there, welcome!")
        session_id = (await client.wait_for("session.ready"))["session_id"]
        await client.wait_for("reply.done")
        await client.send({"type": "session.end"})
        await client.wait_closed()
        assert loop.time() - began < 5
        await receiver.wait_for(1)
        record = await ended_session(history_server, session_id, headers, within=5)
        assert record["status"] == "ended"
        deliveries = await deliveries_when(
            history_server, session_id, lambda found: any(d["error"] for d in found), headers
        )
    failed = next(d for d in deliveries if d["error"])
    assert failed["status"] == "pending" and failed["next_retry_at"] and "no answer within" in failed["error"]
