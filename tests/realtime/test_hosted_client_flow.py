"""One client written against the hosted API's shapes (strict models of HOSTED.md, as a generated SDK
parses), end to end over a real server: agents CRUD with paging, POST /v1/tokens, a Bearer WebSocket,
session.ready with its config, a dropped socket resumed with the resume token, a text turn, session.end."""

from __future__ import annotations

import json

from tests.api.hosted_client import HostedClient
from tests.live_server import LiveServer
from tests.realtime import hosted_events
from tests.realtime.conftest import Connect
from tests.realtime.protocol_client import ProtocolClient


async def _event(client: ProtocolClient, kind: str, model: type, **fields: object) -> object:
    return model.model_validate(await client.wait_for(kind, **fields))  # type: ignore[attr-defined]


async def test_a_hosted_client_runs_its_whole_flow(connect: Connect, rt_server: LiveServer) -> None:
    with rt_server.client() as http:
        hosted = HostedClient(http)
        created = [
            hosted.create_agent(
                {
                    "name": f"Shop {n}",
                    "system_prompt": "Be brief.",
                    "voice": {"voice_id": "claire"},
                    "input": {"type": "text"},
                    "output": {"type": "text"},
                    "tools": [{"name": "lookup_order", "response_instructions": {"success": "Confirm it."}}],
                    "not_built_yet": {"kept": True},
                }
            )
            for n in range(3)
        ]
        listed = {agent.id for agent in hosted.iterate_agents(limit=2)}
        assert {agent.id for agent in created} <= listed
        agent = hosted.update_agent(created[0].id, {"greeting": "Hello from the shop."})
        assert agent.greeting == "Hello from the shop." and agent.tools[0].id == created[0].tools[0].id
        token = hosted.create_token({"expires_in_seconds": 60})

    client = await connect(headers={"Authorization": f"Bearer {token.token}"})
    await client.update(agent_id=agent.id)
    ready = await _event(client, "session.ready", hosted_events.SessionReady)
    assert ready.config.id == agent.id  # type: ignore[attr-defined]
    greeting = await _event(client, "transcript.agent", hosted_events.TranscriptAgent)
    assert greeting.text == "Hello from the shop."  # type: ignore[attr-defined]
    await client.wait_for("reply.done")
    await client.connection.close()  # the socket drops; the one-time token is spent

    resumed = await connect(headers={"Authorization": f"Bearer {ready.resume_token}"})  # type: ignore[attr-defined]
    await resumed.send({"type": "session.resume", "session_id": ready.session_id})  # type: ignore[attr-defined]
    await _event(resumed, "session.ready", hosted_events.SessionReady)
    await resumed.send({"type": "conversation.message", "role": "user", "content": "what did you say before"})
    answer = await _event(resumed, "transcript.agent", hosted_events.TranscriptAgent)
    assert answer.text == "Before I said: Hello from the shop.."  # type: ignore[attr-defined]
    done = await _event(resumed, "reply.done", hosted_events.ReplyDone)
    assert done.status == "completed"  # type: ignore[attr-defined]
    await resumed.send({"type": "session.end"})
    ended = await _event(resumed, "session.ended", hosted_events.SessionEnded)
    assert ended.session_duration_seconds >= 0  # type: ignore[attr-defined]
    assert json.loads(json.dumps(ready.config.model_dump()))["input"]["type"] == "text"  # type: ignore[attr-defined]
