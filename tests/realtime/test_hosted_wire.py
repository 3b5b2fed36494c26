"""The hosted dialect on ``/v1/ws`` (HOSTED.md §3-§4): event shapes parsed with strict models, the agent's
played words as deltas, one-time tokens as ``Bearer``, resume tokens, lower-case codes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests import doubles
from tests.live_server import LiveServer
from tests.realtime import hosted_events as hosted
from tests.realtime.conftest import Connect, ready_client, utterance
from tests.realtime.protocol_client import ProtocolClient

GREETING = "Hello and welcome to the test line, how can I help you today?"
PCM_BYTES_PER_MS = 48  # audio/pcm: 24 kHz, 16-bit


async def _mint_token(server: LiveServer) -> str:
    async with server.async_client() as rest:
        response = await rest.get("/v1/token", params={"expires_in_seconds": 60})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


def _reply_events(client: ProtocolClient, reply_id: str) -> list[dict[str, Any]]:
    return [e for e in client.received if e.get("reply_id") == reply_id]


def _check_deltas_follow_playout(events: list[dict[str, Any]]) -> list[hosted.TranscriptAgentDelta]:
    """The reply's deltas, checked to place words no later than the audio sent before them."""
    deltas: list[hosted.TranscriptAgentDelta] = []
    audio_ms = 0.0
    for event in events:
        if event["type"] == "reply.audio":
            audio_ms += len(base64.b64decode(event["data"])) / PCM_BYTES_PER_MS
        elif event["type"] == "transcript.agent.delta":
            delta = hosted.TranscriptAgentDelta.model_validate(event)
            assert delta.start_ms <= delta.end_ms <= audio_ms + 1, (delta, audio_ms)
            if deltas:
                assert delta.delta.startswith(" ") and delta.start_ms >= deltas[-1].end_ms - 1
            deltas.append(delta)
    return deltas


async def test_session_ready_and_updated_show_the_config_without_secrets(
    connect: Connect, rt_server: LiveServer
) -> None:
    tool = {
        "name": "lookup_order",
        "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"secret": {"type": "string"}}},
        "http": {
            "url": "https://api.example.com/orders",
            "http_method": "GET",
            "headers": [{"name": "X-Api-Key", "value": "tool-secret-1"}],
        },
    }
    body = {"name": "Wire", "system_prompt": "plain", "voice": {"voice_id": "ivy"}, "tools": [tool]}
    async with rt_server.async_client() as rest:
        response = await rest.post("/v1/agents", json=body)
        assert response.status_code in (200, 201), response.text
        agent_id = response.json()["id"]
    client = await connect()
    await client.update(agent_id=agent_id)
    raw = await client.wait_for("session.ready")
    ready = hosted.SessionReady.model_validate(raw)
    assert "tool-secret-1" not in json.dumps(raw)
    assert ready.config.id == agent_id and ready.config.system_prompt == "plain"
    shown = ready.config.tools[0]
    assert shown.name == "lookup_order" and shown.execution_mode == "interactive"
    assert shown.http is not None and [h.name for h in shown.http.headers] == ["X-Api-Key"]
    assert shown.parameters == tool["parameters"]
    assert ready.resume_token.startswith("vgr_")
    assert abs(ready.expires_at - (time.time() + 3 * 3600)) <= 5  # the server's 3 h cap

    await client.update(system_prompt="changed", input={"keyterms": ["Acme"]})
    updated = hosted.SessionUpdated.model_validate(await client.wait_for("session.updated"))
    assert updated.config.system_prompt == "changed" and updated.config.input["keyterms"] == ["Acme"]
    assert updated.config.id == agent_id and "tool-secret-1" not in json.dumps(client.received[-1])


async def test_reply_deltas_follow_the_audio_and_add_up_to_the_transcript(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting=GREETING)
    done = hosted.ReplyDone.model_validate(await client.wait_for("reply.done"))
    assert done.status == "completed"
    events = _reply_events(client, done.reply_id)
    deltas = _check_deltas_follow_playout(events)
    agent = hosted.TranscriptAgent.model_validate(next(e for e in events if e["type"] == "transcript.agent"))
    assert "".join(d.delta for d in deltas) == agent.text == GREETING
    # Paced: words went out while the audio was still being sent, not all at the end.
    types = [e["type"] for e in events]
    assert types.index("transcript.agent.delta") < len(types) - 1 - types[::-1].index("reply.audio")
    assert len(deltas) > 3

    await client.send({"type": "session.end"})
    ended = hosted.SessionEnded.model_validate(await client.wait_for("session.ended"))
    assert ended.audio_duration_seconds == 0.0
    # Every event carries timestamp: seconds since the session started, never decreasing.
    stamps = [e["timestamp"] for e in client.received]
    assert stamps == sorted(stamps) and 0 <= stamps[0] and stamps[-1] < 60


async def test_barge_in_deltas_add_up_to_the_trimmed_transcript(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send_audio(utterance("tell me a long story"))
    started = await client.wait_for("reply.started")
    for _ in range(16):
        await client.wait_for("reply.audio")
    await client.send_audio(utterance("wait stop I have another question", silence_ms=100))
    agent = hosted.TranscriptAgent.model_validate(await client.wait_for("transcript.agent"))
    done = hosted.ReplyDone.model_validate(await client.wait_for("reply.done"))
    assert agent.interrupted and done.status == "interrupted"
    events = _reply_events(client, started["reply_id"])
    deltas = _check_deltas_follow_playout(events)
    after = events[[e["type"] for e in events].index("transcript.agent") :]
    assert "transcript.agent.delta" not in [e["type"] for e in after]
    story = doubles.LONG_STORY
    assert agent.text and story.startswith(agent.text) and len(agent.text) < len(story)
    assert "".join(d.delta for d in deltas) == agent.text


async def test_one_time_token_works_as_bearer_once(connect: Connect, rt_server: LiveServer) -> None:
    token = await _mint_token(rt_server)
    first = await connect(headers={"Authorization": f"Bearer {token}"})
    await first.update()
    hosted.SessionReady.model_validate(await first.wait_for("session.ready"))
    second = await connect(headers={"Authorization": f"Bearer {token}"})
    error = hosted.SessionError.model_validate(await second.next_event())
    assert error.code == "unauthorized"
    assert await second.wait_closed() == 1008 and second.close_reason == "unauthorized"


async def test_resume_token_resumes_its_session_after_every_drop(connect: Connect) -> None:
    client = await connect()
    await client.update(system_prompt="plain", greeting="Hello from before.")
    ready = hosted.SessionReady.model_validate(await client.wait_for("session.ready"))
    await client.wait_for("reply.done")
    await client.connection.close()  # a drop: no session.end

    by_header = await connect(headers={"Authorization": f"Bearer {ready.resume_token}"})
    await by_header.send({"type": "session.resume", "session_id": ready.session_id})
    again = hosted.SessionReady.model_validate(await by_header.wait_for("session.ready"))
    assert again.session_id == ready.session_id and again.config.greeting == "Hello from before."
    await by_header.send_audio(utterance("what did you say before"))
    answer = await by_header.wait_for("transcript.agent")
    assert answer["text"].startswith("Before I said: Hello from before.")
    await by_header.wait_for("reply.done")
    await by_header.connection.close()

    by_query = await connect(headers={}, query=f"token={again.resume_token}")  # a browser
    await by_query.send({"type": "session.resume", "session_id": ready.session_id})
    assert (await by_query.wait_for("session.ready"))["session_id"] == ready.session_id


async def test_resume_token_opens_no_other_session(connect: Connect) -> None:
    mine, _ = await ready_client(connect)
    token = hosted.SessionReady.model_validate(mine.received[0]).resume_token
    other, other_id = await ready_client(connect)
    await mine.connection.close()
    await other.connection.close()

    wrong_session = await connect(headers={"Authorization": f"Bearer {token}"})
    await wrong_session.send({"type": "session.resume", "session_id": other_id})
    assert hosted.SessionError.model_validate(await wrong_session.next_event()).code == "session_forbidden"
    assert await wrong_session.wait_closed() == 1008 and wrong_session.close_reason == "session_forbidden"

    new_session = await connect(headers={"Authorization": f"Bearer {token}"})
    await new_session.update(system_prompt="a session of my own")
    assert (await new_session.next_event())["code"] == "session_forbidden"
    assert await new_session.wait_closed() == 1008

    body, _, signature = token.partition(".")
    forged = await connect(headers={"Authorization": f"Bearer {body}x.{signature}"})
    assert (await forged.next_event())["code"] == "unauthorized"
    assert await forged.wait_closed() == 1008

    owner = await connect()  # the other session was never claimed: its owner's key still resumes it
    await owner.send({"type": "session.resume", "session_id": other_id})
    await owner.wait_for("session.ready", session_id=other_id)


async def test_spent_one_time_token_does_not_resume(connect: Connect, rt_server: LiveServer) -> None:
    token = await _mint_token(rt_server)
    client = await connect(headers={}, query=f"token={token}")
    await client.update()
    ready = hosted.SessionReady.model_validate(await client.wait_for("session.ready"))
    await client.connection.close()

    spent = await connect(headers={}, query=f"token={token}")
    await spent.send({"type": "session.resume", "session_id": ready.session_id})
    assert (await spent.next_event())["code"] == "unauthorized"
    assert await spent.wait_closed() == 1008 and spent.close_reason == "unauthorized"

    resumed = await connect(headers={}, query=f"token={ready.resume_token}")
    await resumed.send({"type": "session.resume", "session_id": ready.session_id})
    await resumed.wait_for("session.ready", session_id=ready.session_id)


async def test_error_codes_are_lower_case_in_the_event_and_the_close_reason(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send({"type": "input.audio"})
    error = hosted.SessionError.model_validate(await client.next_event())
    assert error.code == "invalid_format" and error.param == "audio"
    unknown = await connect()
    await unknown.send({"type": "session.resume", "session_id": "sess_nope"})
    assert hosted.SessionError.model_validate(await unknown.next_event()).code == "session_not_found"
    assert await unknown.wait_closed() == 1008 and unknown.close_reason == "session_not_found"
