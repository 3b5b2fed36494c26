"""Client tools (PROTOCOL.md §5.4, §8.2, §8.3, §8.5) and server-side HTTP tools (§8.4) over the wire."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import Connect, ready_client, silence, utterance
from tests.realtime.protocol_client import ProtocolClient

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}
TRANSFER = {
    "type": "function",
    "name": "transfer",
    "execution_mode": "hold",
    "parameters": {"type": "object", "properties": {"department": {"type": "string"}}},
}


async def _ask_weather(client: ProtocolClient) -> tuple[dict[str, Any], dict[str, Any]]:
    await client.send_audio(utterance("what is the weather in tokyo"))
    started = await client.wait_for("reply.started")
    call = await client.wait_for("tool.call")
    return started, call


async def test_client_tool_round_trip(connect: Connect) -> None:
    client, _ = await ready_client(connect, tools=[WEATHER])
    started, call = await _ask_weather(client)
    assert call["name"] == "get_weather"
    assert call["arguments"] == {"location": "Tokyo"} == call["args"]
    done = await client.wait_for("reply.done")
    assert done["status"] == "completed" and done["reply_id"] == started["reply_id"]
    types = client.non_audio_types()
    assert types.index("tool.call") < types.index("transcript.agent") < types.index("reply.done")

    await client.send(
        {"type": "tool.result", "call_id": call["call_id"], "result": json.dumps({"temp_c": 22})}
    )
    follow = await client.wait_for("reply.started")
    assert follow["reply_id"] != started["reply_id"]
    answer = await client.wait_for("transcript.agent")
    assert answer["text"] == 'The tool said {"temp_c": 22}.'
    await client.wait_for("reply.done")


async def test_early_result_is_held_until_reply_done(connect: Connect) -> None:
    client, _ = await ready_client(connect, tools=[WEATHER])
    started, call = await _ask_weather(client)
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": {"temp_c": 5}})
    done = await client.wait_for("reply.done")
    assert done["reply_id"] == started["reply_id"] and done["status"] == "completed"
    follow = await client.wait_for("reply.started")
    answer = await client.wait_for("transcript.agent", reply_id=follow["reply_id"])
    assert answer["text"] == 'The tool said {"temp_c":5}.'
    assert "session.error" not in client.types()


async def test_unknown_and_duplicate_results_are_invalid_value(connect: Connect) -> None:
    client, _ = await ready_client(connect, tools=[WEATHER])
    await client.send({"type": "tool.result", "call_id": "call_unknown", "result": "{}"})
    error = await client.expect_error("invalid_value")
    assert error["param"] == "call_id"
    _, call = await _ask_weather(client)
    await client.wait_for("reply.done")
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": "{}"})
    await client.wait_for("reply.done")
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": "{}"})
    error = await client.expect_error("invalid_value")
    assert error["param"] == "call_id" and "already answered" in error["message"]
    # Nothing else happened: the session answers the next message normally.
    await client.update(system_prompt="x")
    assert (await client.next_event())["type"] == "session.updated"


async def test_calls_of_an_interrupted_reply_are_cancelled(connect: Connect) -> None:
    client, _ = await ready_client(connect, tools=[WEATHER])
    _, call = await _ask_weather(client)
    await client.send_audio(utterance("wait stop I have another question", silence_ms=50))
    done = await client.wait_for("reply.done")
    assert done["status"] == "interrupted"
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": "{}"})
    error = await client.expect_error("invalid_value")
    assert "cancelled" in error["message"]
    await client.send_audio(silence(1000))
    await client.wait_for("transcript.user")
    answer = await client.wait_for("transcript.agent")
    assert answer["text"].startswith("You said wait stop")  # the cancelled call never comes back


@pytest.fixture(scope="module")
def timeout_tool() -> dict[str, Any]:
    return {**WEATHER, "timeout_seconds": 1}


async def test_tool_timeout_makes_the_agent_apologise(connect: Connect, timeout_tool: dict[str, Any]) -> None:
    client, _ = await ready_client(connect, tools=[timeout_tool])
    _, call = await _ask_weather(client)
    await client.wait_for("reply.done")
    answer = await client.wait_for("transcript.agent", within=5)
    assert answer["text"].startswith("Sorry, I could not get that answer.")
    await client.wait_for("reply.done")
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": "{}"})
    error = await client.expect_error("invalid_value")
    assert "timed out" in error["message"]


async def test_hold_mode_suppresses_replies_and_flushes_transcripts(connect: Connect) -> None:
    client, _ = await ready_client(connect, tools=[TRANSFER])
    await client.send_audio(utterance("please hold the line"))
    call = await client.wait_for("tool.call")
    assert call["name"] == "transfer"
    await client.wait_for("reply.done")
    mark = client.mark()
    await client.send_audio(utterance("hello there"))
    await client.wait_for("input.speech.stopped")
    await client.send({"type": "reply.create", "instructions": "SAY: Still transferring, please wait."})
    status = await client.wait_for("transcript.agent")
    assert status["text"] == "Still transferring, please wait."
    await client.wait_for("reply.done")
    during = client.non_audio_types(mark)
    assert "transcript.user" not in during and "transcript.user.delta" not in during
    assert during.count("reply.started") == 1  # only the reply.create status update
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": '{"ok": true}'})
    flushed = await client.wait_for("transcript.user")
    assert flushed["text"] == "hello there"
    await client.wait_for("reply.started")
    answer = await client.wait_for("transcript.agent")
    assert answer["text"] == "You said hello there."


# --- server-side HTTP tools ---------------------------------------------------------------------
class _EchoHandler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = json.dumps({"m": self.command, "p": self.path, "b": body, "k": self.headers.get("X-Key")})
        data = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def _agent(rt_server: LiveServer, tool: dict[str, Any]) -> str:
    async with rt_server.async_client() as rest:
        response = await rest.post(
            "/v1/agents",
            json={
                "name": "Orders",
                "system_prompt": "Help with orders.",
                "voice": {"voice_id": "ivy"},
                "tools": [tool],
            },
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]


async def test_http_tool_get_runs_server_side(connect: Connect, rt_server: LiveServer, echo_url: str) -> None:
    agent_id = await _agent(
        rt_server,
        {
            "name": "check_order",
            "http": {
                "url": f"{echo_url}/orders?src=vg",
                "http_method": "GET",
                "headers": [{"name": "X-Key", "value": "s3cret"}],
            },
        },
    )
    client, _ = await ready_client(connect, agent_id=agent_id)
    await client.send_audio(utterance("check my order"))
    answer = await client.wait_for("transcript.agent", within=20)
    spoken = answer["text"]
    assert spoken.startswith("One moment. The tool said ")
    result = json.loads(spoken.removeprefix("One moment. The tool said ").removesuffix("."))
    assert result == {"m": "GET", "p": "/orders?src=vg&order_id=AB12345&rush=true", "b": "", "k": "s3cret"}
    assert "tool.call" not in client.types()


async def test_http_tool_post_sends_json_in_hold_mode(
    connect: Connect, rt_server: LiveServer, echo_url: str
) -> None:
    agent_id = await _agent(
        rt_server,
        {
            "name": "check_order",
            "execution_mode": "hold",
            "http": {"url": f"{echo_url}/orders"},
        },
    )
    client, _ = await ready_client(connect, agent_id=agent_id)
    await client.send_audio(utterance("check my order"))
    first = await client.wait_for("transcript.agent")
    assert first["text"] == "One moment."
    await client.wait_for("reply.done")
    answer = await client.wait_for("transcript.agent", within=20)
    result = json.loads(answer["text"].removeprefix("The tool said ").removesuffix("."))
    assert result["m"] == "POST" and json.loads(result["b"]) == {"order_id": "AB12345", "rush": True}
