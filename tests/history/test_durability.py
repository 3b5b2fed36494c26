"""What survives a SIGKILL of the server: the outbox (a delivery pending when the process died is sent
after the restart), the record (closed as ``server_stopped`` at start-up) and the audio written so far."""

from __future__ import annotations

import io
import signal

import av
import httpx

from tests.conftest import ServerFactory
from tests.doubles import LONG_STORY
from tests.history.conftest import HISTORY_ENV, ended_session
from tests.history.webhook_receiver import WebhookReceiver
from tests.live_server import free_port
from tests.realtime.conftest import doubles_env
from tests.realtime.protocol_client import ProtocolClient

SECRET = "durable-" + "k" * 40


async def test_outbox_record_and_audio_survive_a_sigkill(live_server_factory: ServerFactory) -> None:
    server = live_server_factory(env=doubles_env(**HISTORY_ENV))
    port = free_port()  # the receiver is down until after the restart
    async with server.async_client() as http:
        response = await http.post(
            "/v1/webhook-subscriptions",
            json={
                "url": f"http://127.0.0.1:{port}/hooks",
                "events": ["session.started", "session.completed"],
                "secret": SECRET,
            },
        )
        assert response.status_code == 201, response.text
    client = await ProtocolClient.open(server.ws_url, headers=server.auth_headers())
    try:
        await client.update(system_prompt="Be brief.", greeting=LONG_STORY)
        session_id = (await client.wait_for("session.ready"))["session_id"]
        for _ in range(40):  # the agent speaks for a while
            await client.wait_for("reply.audio")
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server.process = None
    finally:
        await client.connection.close()

    with WebhookReceiver(SECRET, port=port) as receiver:
        server.start()
        started = await receiver.wait_for(1, type="session.started")
        completed = await receiver.wait_for(1, type="session.completed")
        record = await ended_session(server, session_id)
    assert started[0].event["data"]["id"] == session_id and started[0].verified
    assert completed[0].event["data"]["public_close_reason"] == "server_stopped"
    assert record["public_close_reason"] == "server_stopped" and record["duration_seconds"] > 0
    artifacts = {artifact["type"]: artifact for artifact in record["artifacts"]}
    assert artifacts["audio"]["complete"] is False and artifacts["timeline"]["complete"] is False
    async with httpx.AsyncClient(timeout=10) as anonymous:
        audio = (await anonymous.get(artifacts["audio"]["url"])).content
        timeline = (await anonymous.get(artifacts["timeline"]["url"])).json()
    with av.open(io.BytesIO(audio)) as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / 48_000
        channels = container.streams.audio[0].codec_context.channels
    assert channels == 2 and seconds >= 0.25  # what was written before the kill plays
    assert timeline["incomplete"] is True and timeline["events"][1]["type"] == "session.ready"
