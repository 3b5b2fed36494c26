"""Several voxgate processes sharing one PostgreSQL and one Redis behave as one service (issue #8)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import agent_body
from tests.live_server import LiveServer
from tests.realtime.conftest import utterance
from tests.realtime.protocol_client import ProtocolClient
from tests.scale.conftest import LEASE_SECONDS, REDIS_URL, Cluster, open_client

TOOL_SECRET = "Bearer scale-secret-0xC0FFEE"


async def _started_conversation(
    server: LiveServer, opened: list[ProtocolClient]
) -> tuple[ProtocolClient, str]:
    """A session on ``server`` with a greeting and one answered user turn."""
    client = await open_client(server, opened)
    await client.update(system_prompt="plain", greeting="Hello from before.")
    session_id = (await client.wait_for("session.ready"))["session_id"]
    await client.wait_for("reply.done")
    await client.send_audio(utterance("hello there"))
    await client.wait_for("reply.done")
    return client, session_id


async def _resume(server: LiveServer, opened: list[ProtocolClient], session_id: str) -> dict[str, object]:
    client = await open_client(server, opened)
    await client.send({"type": "session.resume", "session_id": session_id})
    return await client.next_event(skip=("reply.audio",))


async def _asks_what_was_said(client: ProtocolClient) -> str:
    await client.send_audio(utterance("what did you say before"))
    return str((await client.wait_for("transcript.agent"))["text"])


def test_agent_created_on_one_instance_is_served_by_the_other(cluster: Cluster) -> None:
    with cluster["a"].client() as a, cluster["b"].client() as b:
        created = a.post("/v1/agents", json=agent_body(name="shared")).json()
        assert b.get(f"/v1/agents/{created['id']}").json() == created
        updated = b.put(f"/v1/agents/{created['id']}", json={"greeting": "Hi from b"}).json()
        assert a.get(f"/v1/agents/{created['id']}").json() == updated
        assert b.delete(f"/v1/agents/{created['id']}").status_code == 204
        assert a.get(f"/v1/agents/{created['id']}").status_code == 404


async def test_session_with_a_stored_agent_runs_on_another_instance_and_keeps_secrets_out_of_redis(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    body = agent_body(name="secretive", greeting="Stored greeting here.")
    body["tools"][0]["http"]["headers"] = [{"name": "Authorization", "value": TOOL_SECRET}]
    async with cluster["a"].async_client() as rest:
        agent = (await rest.post("/v1/agents", json=body)).json()
    client = await open_client(cluster["b"], clients)
    await client.update(agent_id=agent["id"])
    session_id = (await client.wait_for("session.ready"))["session_id"]
    assert (await client.wait_for("transcript.agent"))["text"] == "Stored greeting here."
    redis = Redis.from_url(REDIS_URL)
    try:
        prefix = cluster.env["VOXGATE_REDIS_KEY_PREFIX"]
        state = await redis.hgetall(f"{prefix}:{{{session_id}}}:state")
    finally:
        await redis.aclose()
    assert state[b"project"] and state[b"payload"], state  # the checkpoint is there ...
    assert TOOL_SECRET.encode() not in state[b"payload"]  # ... but not the secret in clear
    assert b"Stored greeting" not in state[b"payload"]


async def test_token_minted_on_one_instance_is_redeemed_once_across_all(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    async with cluster["a"].async_client() as rest:
        token = (await rest.get("/v1/token", params={"expires_in_seconds": 60})).json()["token"]
    contenders = [cluster["a"], cluster["b"], cluster["a"], cluster["b"]]
    opened = await asyncio.gather(
        *(open_client(s, clients, query=f"token={token}", authenticated=False) for s in contenders)
    )

    async def attempt(client: ProtocolClient) -> str:
        with contextlib.suppress(ConnectionClosed):  # a loser is rejected (and closed) at once
            await client.update()
        event = await client.next_event(skip=("reply.audio",))
        return str(event.get("code") or event["type"])

    results = await asyncio.gather(*(attempt(c) for c in opened))
    assert sorted(results) == sorted(["unauthorized"] * 3 + ["session.ready"]), results


async def test_session_resumed_on_another_instance_keeps_its_history(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    first, session_id = await _started_conversation(cluster["a"], clients)
    await first.connection.close()  # a drop, no session.end
    ready = await _resume(cluster["b"], clients, session_id)
    assert ready["type"] == "session.ready" and ready["session_id"] == session_id
    resumed = clients[-1]
    assert await _asks_what_was_said(resumed) == "Before I said: Hello from before. | You said hello there.."
    # ... and back to a again after another drop, with the turn taken on b.
    await resumed.connection.close()
    assert (await _resume(cluster["a"], clients, session_id))["type"] == "session.ready"
    assert await _asks_what_was_said(clients[-1]) == (
        "Before I said: Hello from before. | You said hello there. | "
        "Before I said: Hello from before. | You said hello there..."
    )


async def test_concurrent_double_resume_has_exactly_one_winner(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    first, session_id = await _started_conversation(cluster["a"], clients)
    await first.connection.close()

    async def resume_on(server: LiveServer) -> tuple[ProtocolClient, dict[str, object]]:
        client = await open_client(server, clients)
        await client.send({"type": "session.resume", "session_id": session_id})
        return client, await client.next_event(skip=("reply.audio",))

    outcomes = await asyncio.gather(resume_on(cluster["a"]), resume_on(cluster["b"]))
    kinds = sorted(str(event.get("code") or event["type"]) for _, event in outcomes)
    assert kinds == ["session.ready", "session_not_found"], outcomes
    winner = next(client for client, event in outcomes if event["type"] == "session.ready")
    # The winner holds the session: a third resume, anywhere, is refused while it is connected ...
    assert (await _resume(cluster["b"], clients, session_id)).get("code") == "session_not_found"
    # ... and the winner carries the one conversation on.
    assert (await _asks_what_was_said(winner)).startswith("Before I said: Hello from before.")


async def test_sigkilled_instance_sessions_resume_elsewhere_from_the_last_turn(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    doomed = cluster.start("c")
    client, session_id = await _started_conversation(doomed, clients)
    await client.send_audio(utterance("tell me a long story"))
    await client.wait_for("reply.audio")  # the story is being spoken ...
    assert doomed.process is not None
    doomed.process.kill()  # ... when the instance dies without any chance to clean up
    doomed.process.wait()
    killed_at = time.monotonic()
    # Until the dead instance's lease lapses the session is still owned; then b takes it over.
    deadline = killed_at + LEASE_SECONDS + 5
    while True:
        event = await _resume(cluster["b"], clients, session_id)
        if event["type"] == "session.ready":
            break
        assert event.get("code") == "session_not_found", event
        assert time.monotonic() < deadline, "the session never became resumable"
        await clients[-1].wait_closed()
    # From the last turn boundary: the story request was recorded, the unfinished story was not.
    last = await _asks_what_was_said(clients[-1])
    assert last == "Before I said: Hello from before. | You said hello there.."


def test_rest_clients_can_use_any_instance_for_keys_created_anywhere(cluster: Cluster) -> None:
    key = cluster["a"].create_api_key(project="tenant-x")
    with httpx.Client(base_url=cluster["b"].base_url, headers={"Authorization": key}) as b:
        created = b.post("/v1/agents", json=agent_body(name="tenant agent")).json()
    with cluster["a"].client() as default_project:
        assert default_project.get(f"/v1/agents/{created['id']}").status_code == 404  # other tenant
    with httpx.Client(base_url=cluster["a"].base_url, headers={"Authorization": key}) as a:
        assert a.get(f"/v1/agents/{created['id']}").json() == created


async def test_resume_from_another_project_is_forbidden_on_any_instance(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    first, session_id = await _started_conversation(cluster["a"], clients)
    await first.connection.close()
    stranger_key = cluster["b"].create_api_key(project="stranger")
    stranger = await ProtocolClient.open(cluster["b"].ws_url, headers=cluster["b"].auth_headers(stranger_key))
    clients.append(stranger)
    await stranger.send({"type": "session.resume", "session_id": session_id})
    await stranger.expect_error("session_forbidden")
    assert await stranger.wait_closed() == 1008
    assert (await _resume(cluster["b"], clients, session_id))["type"] == "session.ready"
