"""Twilio bridge fixtures: a real voxgate server process with deterministic speech doubles (the LLM double
records what it is shown), stored phone agents, and a simulated Twilio peer that dials in through the
TwiML the server answers with."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.doubles import DOUBLES_ENV, PHRASE_TONES, tone
from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.twilio.twilio_peer import SAMPLE_RATE, SimulatedTwilio

PCMU = {"format": {"encoding": "audio/pcmu"}}


def phone_env(record: Path, **extra: str) -> dict[str, str]:
    return {
        **DOUBLES_ENV,
        "VOXGATE_LLM": "tests.twilio.recording_llm:recording_llm",
        "VOXGATE_TEST_LLM_RECORD": str(record),
        "PYTHONPATH": SERVER_PYTHONPATH,
        **extra,
    }


@dataclass
class PhoneServer:
    server: LiveServer
    record: Path

    def create_agent(self, **fields: Any) -> str:
        body = {"name": "phone", "system_prompt": "You answer the phone.", "voice": {"voice_id": "ivy"}}
        body.update(fields)
        with self.server.client() as client:
            response = client.post("/v1/agents", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def answer(self, agent_id: str, **form: str) -> tuple[str, dict[str, str]]:
        """POST Twilio's voice webhook; the ``<Stream>`` url and its ``<Parameter>`` values."""
        response = httpx.post(
            f"{self.server.base_url}/twilio/voice",
            params={"agent_id": agent_id},
            data=call_form(**form),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return parse_stream_twiml(response.text)


def call_form(**overrides: str) -> dict[str, str]:
    """The form fields of Twilio's voice webhook."""
    form = {
        "CallSid": "CA" + secrets.token_hex(16),
        "AccountSid": "AC" + secrets.token_hex(16),
        "From": "+14155550100",
        "To": "+14155550199",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    form.update(overrides)
    return form


def parse_stream_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None, twiml
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return stream.attrib["url"], parameters


@pytest.fixture(scope="package")
def phone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneServer]:
    data_dir = tmp_path_factory.mktemp("phone")
    record = data_dir / "llm-record.jsonl"
    server = LiveServer(data_dir, env=phone_env(record))
    with server:
        yield PhoneServer(server, record)


Dial = Callable[..., Awaitable[SimulatedTwilio]]


@pytest.fixture
async def dial(phone_server: PhoneServer) -> AsyncIterator[Dial]:
    """``await dial(agent_id, playout_latency=0.0, stream_audio=True)``: a call answered by the webhook,
    with ``connected`` and ``start`` sent."""
    peers: list[SimulatedTwilio] = []

    async def open_call(
        agent_id: str, *, playout_latency: float = 0.0, stream_audio: bool = True
    ) -> SimulatedTwilio:
        url, parameters = phone_server.answer(agent_id)
        peer = await SimulatedTwilio.dial(url, playout_latency=playout_latency)
        peers.append(peer)
        await peer.start(parameters, stream_audio=stream_audio)
        return peer

    yield open_call
    for peer in peers:
        await peer.close()


def phrase_audio(phrase: str, *, speech_ms: float = 900, silence_ms: float = 0) -> np.ndarray:
    """A marker-tone utterance (decoded as ``phrase`` by the STT double) at 8 kHz, then silence."""
    return np.concatenate(
        [tone(PHRASE_TONES[phrase], speech_ms, rate=SAMPLE_RATE), np.zeros(int(8 * silence_ms), np.float32)]
    )
