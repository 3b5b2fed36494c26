"""A phone call has a session record like a ``/v1/ws`` session: channel ``phone``, the caller and called
numbers from Twilio's webhook, and a two-channel recording of the call as it was heard."""

from __future__ import annotations

import asyncio
import io

import av
import httpx
import numpy as np

from tests.doubles import MS_PER_WORD
from tests.history.conftest import ended_session
from tests.twilio.conftest import PCMU, Dial, PhoneServer, phrase_audio


async def test_a_call_is_recorded_with_its_numbers(phone_server: PhoneServer, dial: Dial) -> None:
    server = phone_server.server
    agent_id = phone_server.create_agent(greeting="Hello caller.", input=PCMU, output=PCMU)
    peer = await dial(agent_id)
    await peer.wait_until(lambda: peer.received_ms >= 2 * MS_PER_WORD - 1)
    await peer.say(phrase_audio("hello there"))
    await peer.wait_until(lambda: peer.received_ms >= 6 * MS_PER_WORD - 1)  # "You said hello there."
    await peer.stop()
    async with asyncio.timeout(10):
        await peer.closed.wait()

    async with server.async_client() as http:
        sessions = (await http.get("/v1/sessions", params={"agent_id": agent_id})).json()["sessions"]
    assert len(sessions) == 1
    record = await ended_session(server, sessions[0]["id"])
    assert record["channel"] == "phone" and record["public_close_reason"] == "call_ended"
    artifacts = {artifact["type"]: artifact["url"] for artifact in record["artifacts"]}
    async with httpx.AsyncClient(timeout=10) as anonymous:
        metadata = (await anonymous.get(artifacts["metadata"])).json()
        audio = (await anonymous.get(artifacts["audio"])).content
    assert metadata["caller_number"] == "+14155550100" and metadata["called_number"] == "+14155550199"
    with av.open(io.BytesIO(audio)) as container:
        planar = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
    assert planar.shape[0] == 2
    assert np.abs(planar[0]).max() > 0.05 and np.abs(planar[1]).max() > 0.05  # the caller, the agent
