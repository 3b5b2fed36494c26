"""Session history over a real server: a spoken conversation (speech doubles) with a barge-in and tool
calls, then its record, its artifacts (the audio decodes as two channels, the interrupted reply cut where
it was cut), the timeline, the signed links, project isolation and deletion."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from typing import Any

import av
import httpx
import numpy as np

from tests.history.conftest import LINK_SECONDS, ended_session, open_client
from tests.live_server import LiveServer
from tests.realtime.conftest import silence, utterance
from tests.realtime.protocol_client import ProtocolClient

WEATHER_TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {}}}}
ORDER_TOOL = {
    "name": "check_order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "rush": {}}},
    "dtmf_collected_arguments": [
        {
            "parameter_name": "order_id",
            "prompt": "Type your order number",
            "min_digits": 4,
            "max_digits": 12,
            "sensitive": True,
        }
    ],
}
SILENCE_SPLIT_SAMPLES = 48_000 // 10
"""Gaps longer than 100 ms (at the decoder's 48 kHz) separate two stretches of agent speech."""


async def _create_agent(server: LiveServer, **fields: Any) -> str:
    async with server.async_client() as http:
        response = await http.post(
            "/v1/agents",
            json={
                "name": "history",
                "system_prompt": "You are helpful.",
                "voice": {"voice_id": "ivy"},
                "tools": [WEATHER_TOOL, ORDER_TOOL],
                **fields,
            },
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _tool_round(client: ProtocolClient, phrase: str, result: str) -> dict[str, Any]:
    await client.send_audio(utterance(phrase))
    call = await client.wait_for("tool.call", within=20)
    await client.wait_for("reply.done", within=20)
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": result})
    await client.wait_for("reply.done", within=20)
    return call


def _decode(ogg: bytes) -> tuple[np.ndarray, int]:
    """(samples, rate) of an OGG/Opus file as (n, channels) float32."""
    with av.open(io.BytesIO(ogg)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    planar = np.concatenate(frames, axis=1)  # (channels, n), fltp
    return planar.T, rate


def _loud_stretches(channel: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges where the channel is audible, split at gaps of silence."""
    loud = np.flatnonzero(np.abs(channel) > 0.02)
    if loud.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > SILENCE_SPLIT_SAMPLES)
    starts = np.concatenate([[loud[0]], loud[breaks + 1]])
    ends = np.concatenate([loud[breaks], [loud[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


async def test_a_conversation_is_recorded_with_audio_timeline_and_metadata(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    agent_id = await _create_agent(history_server)
    client = await open_client(history_server, clients)
    await client.update(agent_id=agent_id)
    ready = await client.wait_for("session.ready")
    session_id = ready["session_id"]

    # 1. A story, cut by the caller.
    await client.send_audio(utterance("tell me a long story"))
    started = await client.wait_for("reply.started")
    first_audio = await client.wait_for("reply.audio", reply_id=started["reply_id"])
    for _ in range(12):
        await client.wait_for("reply.audio")
    await client.send_audio(utterance("wait stop I have another question", silence_ms=100))
    cut = await client.wait_for("transcript.agent", interrupted=True)
    await client.wait_for("reply.done")
    await asyncio.sleep(0.5)  # a pause of the caller: the next reply starts apart from the cut one
    await client.send_audio(silence(1200))
    await client.wait_for("reply.done", within=20)
    # 2. Two client tool calls; check_order's order_id is sensitive.
    weather = await _tool_round(client, "what is the weather in tokyo", "Sunny, 21 degrees")
    order = await _tool_round(client, "check my order", '{"status": "shipped"}')
    assert order["arguments"]["order_id"] == "AB12345"  # the client itself gets the real value
    await client.send({"type": "session.end"})
    await client.wait_closed()

    record = await ended_session(history_server, session_id)
    assert record["agent_id"] == agent_id and record["channel"] == "websocket"
    assert record["public_close_reason"] == "client_ended" and record["duration_seconds"] > 1
    assert record["config"]["id"] == agent_id
    assert [t["name"] for t in record["config"]["tools"]] == ["get_weather", "check_order"]
    by_type = {artifact["type"]: artifact for artifact in record["artifacts"]}
    assert set(by_type) == {"audio", "timeline", "metadata"}
    assert by_type["audio"]["content_type"] == "audio/ogg" and all(a["complete"] for a in record["artifacts"])
    async with httpx.AsyncClient(timeout=10) as anonymous:  # no API key: the link is the credential
        files = {kind: await anonymous.get(artifact["url"]) for kind, artifact in by_type.items()}
    assert all(response.status_code == 200 for response in files.values())

    # The audio: two channels; the agent's first stretch is the story, as long as it was played.
    samples, rate = _decode(files["audio"].content)
    assert samples.shape[1] == 2
    caller, agent = samples[:, 0], samples[:, 1]
    assert _loud_stretches(caller), "the caller's speech is on the left channel"
    story_start, story_end = _loud_stretches(agent)[0]
    played_ms = (cut["timestamp"] - first_audio["timestamp"]) * 1000
    recorded_ms = (story_end - story_start) * 1000 / rate
    assert abs(recorded_ms - played_ms) <= 100, (recorded_ms, played_ms)
    assert len(_loud_stretches(agent)) >= 2  # the cut story, then the later replies

    # The timeline: events in order, the barge-in, the tool calls and each turn's latencies.
    timeline = files["timeline"].json()
    assert timeline["session_id"] == session_id
    events = timeline["events"]
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["session.update", "session.ready"]
    assert all("audio" not in e and "data" not in e for e in events)  # no audio payloads
    assert any(e["type"] == "input.audio" and e["audio_ms"] > 0 for e in events)
    assert [e["reply_id"] for e in events if e["type"] == "barge_in"] == [cut["reply_id"]]
    calls = [e for e in events if e["type"] == "tool.call"]
    assert [c["name"] for c in calls] == ["get_weather", "check_order"]
    assert calls[0]["arguments"] == weather["arguments"]
    assert calls[1]["arguments"] == {"order_id": "[redacted]", "rush": True}
    assert next(e["result"] for e in events if e["type"] == "tool.result") == "Sunny, 21 degrees"
    turns = [e for e in events if e["type"] == "turn.latency"]
    assert len(turns) >= 4 and all(t["speech_end_to_first_audio_ms"] is not None for t in turns[:1])
    transcripts = [e["text"] for e in events if e["type"] == "transcript.user"]
    assert transcripts[0] == "tell me a long story"
    assert all(e["t"] <= later["t"] for e, later in itertools.pairwise(events))

    metadata = files["metadata"].json()
    assert metadata["agent_id"] == agent_id and metadata["channel"] == "websocket"
    assert metadata["public_close_reason"] == "client_ended" and metadata["recording"]["complete"] is True
    for response in files.values():
        assert b"AB12345" not in response.content  # the sensitive argument is in no artifact

    # The links stop working once they expired; a tampered one never worked.
    async with httpx.AsyncClient(timeout=10) as anonymous:
        tampered = by_type["metadata"]["url"].replace("metadata.json", "timeline.json")
        assert (await anonymous.get(tampered)).json()["code"] == "invalid_signature"
        await asyncio.sleep(LINK_SECONDS + 1)  # expiry is wall-clock time: nothing to await
        expired = await anonymous.get(by_type["audio"]["url"])
    assert expired.status_code == 403 and expired.json()["code"] == "link_expired"


async def test_lists_filter_and_isolate_projects(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    agent_id = await _create_agent(history_server)
    ids = []
    for session in ({"agent_id": agent_id}, {"system_prompt": "inline"}):
        client = await open_client(history_server, clients)
        await client.update(**session)
        ids.append((await client.wait_for("session.ready"))["session_id"])
        await client.send({"type": "session.end"})
        await client.wait_closed()
    live = await open_client(history_server, clients)
    await live.update(system_prompt="still talking")
    live_id = (await live.wait_for("session.ready"))["session_id"]
    for session_id in ids:
        await ended_session(history_server, session_id)

    async with history_server.async_client() as http:
        newest = (await http.get("/v1/sessions", params={"limit": 2})).json()
        assert [s["id"] for s in newest["sessions"]] == [live_id, ids[1]] and newest["has_more"] is True
        after = (
            await http.get(
                "/v1/sessions", params={"limit": 2, "cursor": newest["response_metadata"]["next_cursor"]}
            )
        ).json()
        assert after["sessions"][0]["id"] == ids[0]
        active = (await http.get("/v1/sessions", params={"status": "active"})).json()["sessions"]
        assert live_id in [s["id"] for s in active] and not {ids[0], ids[1]} & {s["id"] for s in active}
        mine = (await http.get("/v1/sessions", params={"agent_id": agent_id})).json()["sessions"]
        assert [s["id"] for s in mine] == [ids[0]]
        assert set(mine[0]) == {
            "id",
            "agent_id",
            "status",
            "public_close_reason",
            "duration_seconds",
            "created_at",
            "ended_at",
        }
        bad = await http.get("/v1/sessions", params={"status": "paused"})
        assert bad.status_code == 422 and bad.json()["param"] == "status"
        garbage = await http.get("/v1/sessions", params={"cursor": "not-a-cursor"})
        assert garbage.status_code == 422 and garbage.json()["param"] == "cursor"
        assert (await http.delete(f"/v1/sessions/{live_id}")).status_code == 409

    other = history_server.auth_headers(history_server.create_api_key())
    async with history_server.async_client(headers=other) as http:
        assert (await http.get("/v1/sessions")).json()["sessions"] == []
        for method in ("GET", "DELETE"):
            response = await http.request(method, f"/v1/sessions/{ids[0]}")
            assert response.status_code == 404 and response.json()["code"] == "session_not_found"


async def test_delete_removes_the_record_and_its_artifacts(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    client = await open_client(history_server, clients)
    await client.update(system_prompt="SAY: Goodbye now.", greeting="Hello!")
    session_id = (await client.wait_for("session.ready"))["session_id"]
    await client.wait_for("reply.done")
    await client.send({"type": "session.end"})
    await client.wait_closed()
    record = await ended_session(history_server, session_id)
    directory = history_server.data_dir / "artifacts" / session_id
    assert {a["type"] for a in record["artifacts"]} == {
        "audio",
        "timeline",
        "metadata",
    } and directory.is_dir()
    async with history_server.async_client() as http:
        assert (await http.delete(f"/v1/sessions/{session_id}")).status_code == 204
        assert (await http.get(f"/v1/sessions/{session_id}")).status_code == 404
        assert (await http.get(record["artifacts"][0]["url"], headers={})).status_code == 404
    assert not directory.exists()


async def test_recording_off_keeps_the_record_and_a_timeline_without_audio(
    history_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    client = await open_client(history_server, clients)
    await client.update(
        system_prompt="Be brief.",
        greeting="Hello there!",
        record=False,
        webhook={"url": "http://127.0.0.1:9/x", "secret": "s" * 40},
    )
    session_id = (await client.wait_for("session.ready"))["session_id"]
    await client.wait_for("reply.done")
    await client.send({"type": "session.end"})
    await client.wait_closed()
    record = await ended_session(history_server, session_id)
    assert {a["type"] for a in record["artifacts"]} == {"timeline", "metadata"}
    async with httpx.AsyncClient(timeout=10) as anonymous:
        for artifact in record["artifacts"]:
            body = (await anonymous.get(artifact["url"])).text
            assert "s" * 40 not in body  # the inline webhook's secret is in no artifact
            if artifact["type"] == "timeline":
                update = json.loads(body)["events"][0]
                assert update["session"]["record"] is False and "secret" not in update["session"]["webhook"]
    assert not list((history_server.data_dir / "artifacts" / session_id).glob("*.ogg"))
