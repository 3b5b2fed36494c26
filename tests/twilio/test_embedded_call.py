"""A phone call to the REAL embedded stack over G.711 μ-law 8 kHz.

No doubles: Silero VAD, Whisper tiny.en, smart-turn, Qwen 0.5B (llama.cpp) and Piper run in the server
process. The caller's question is spoken by the packaged Piper joe voice at test time, resampled to
8 kHz and μ-law encoded by CPython's ``audioop`` (the simulated peer's codec, independent of voxgate's),
then streamed as Twilio does: 20 ms ``media`` frames at real-time pace, line silence before and after.

What the call must show:

- the agent's answer comes back as ``media`` frames, each followed by its ``mark``, and every mark is
  echoed as played;
- the server's own transcript of the call (the bridge's per-call log lines, at debug level) heard the
  question's key words, and the agent's answer names Paris;
- the agent's audio, decoded back from μ-law at 8 kHz and transcribed by the test's own Whisper, says
  (most of) what the server's transcript says it said: it is speech at the right rate, not noise.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
import soxr
from numpy.typing import NDArray

from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.speech.fixtures import SAMPLE_RATE as FIXTURE_RATE
from tests.speech.fixtures import independent_transcript, piper_speech
from tests.twilio.conftest import PCMU, call_form, parse_stream_twiml
from tests.twilio.twilio_peer import SAMPLE_RATE, SimulatedTwilio, float_from_mulaw
from voxgate.config import Settings

pytestmark = pytest.mark.models

QUESTION = "What is the capital of France?"
QUESTION_WORDS = {"capital", "france"}
ANSWER_WORD = "paris"
SYSTEM_PROMPT = "You are a helpful assistant on the phone. Answer in one short sentence."
LEAD_SILENCE_S = 0.5
ANSWER_TIMEOUT_S = 60.0
"""The whole turn on a busy 2-core machine: VAD, Whisper, end of turn, a cold LLM prefill, Piper."""
LOG_POLL_S = 0.1
REPLY_CHUNK_BYTES = 400
"""The engine's ~50 ms reply chunks: 400 one-byte μ-law samples at 8 kHz (Twilio takes any size)."""
MIN_ANSWER_MS = 500
"""Shorter than any spoken answer naming a city ("Paris." alone is about 0.6 s)."""
MIN_WORD_OVERLAP = 0.6


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A voxgate process with the default (embedded) speech stack, loaded before it answers /healthz; it
    logs at debug level, where the phone bridge writes what the caller and the agent said."""
    env = {
        "PYTHONPATH": SERVER_PYTHONPATH,
        "VOXGATE_MODEL_CACHE_DIR": str(Settings().effective_model_cache_dir),
        "VOXGATE_PRELOAD_MODELS": "true",
        "VOXGATE_LOG_LEVEL": "debug",
    }
    server = LiveServer(tmp_path_factory.mktemp("embedded-phone"), env=env, startup_timeout=180)
    with server:
        yield server


def piper_question_8k(text: str) -> NDArray[np.float32]:
    """``text`` spoken by the packaged Piper joe voice, at the phone line's 8 kHz."""
    return soxr.resample(piper_speech(text), FIXTURE_RATE, SAMPLE_RATE, quality="HQ").astype(np.float32)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def said(log: str, call_sid: str, who: str) -> list[str]:
    """What the server's bridge logged that ``who`` ("caller" or "agent") said on the call."""
    pattern = re.compile(rf"call {re.escape(call_sid)}: {who} said ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
    return [ast.literal_eval(match.group(1)) for match in pattern.finditer(log)]


async def logged_answer(server: LiveServer, call_sid: str, within: float) -> str:
    """Poll the server's log until the agent's transcript of this call appears: the end of a reply has no
    frame of its own on a Twilio stream that the peer could await."""
    deadline = time.monotonic() + within
    while True:
        answers = said(server.log_text(), call_sid, "agent")
        if answers:
            return answers[0]
        assert time.monotonic() < deadline, f"no agent transcript within {within} s"
        await asyncio.sleep(LOG_POLL_S)


async def test_a_spoken_question_over_mulaw_gets_a_spoken_answer(embedded_server: LiveServer) -> None:
    async with embedded_server.async_client() as http:
        created = await http.post(
            "/v1/agents",
            json={
                "name": "phone (embedded)",
                "system_prompt": SYSTEM_PROMPT,
                "voice": {"voice_id": "ivy"},
                "input": PCMU,
                "output": PCMU,
            },
        )
        assert created.status_code == 201, created.text
        twiml = await http.post("/twilio/voice", params={"agent_id": created.json()["id"]}, data=call_form())
    assert twiml.status_code == 200, twiml.text
    url, parameters = parse_stream_twiml(twiml.text)
    lead = np.zeros(int(SAMPLE_RATE * LEAD_SILENCE_S), np.float32)
    question = np.concatenate([lead, piper_question_8k(QUESTION)])

    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start(parameters)
        began = time.monotonic()
        await peer.say(question)  # then the microphone carries on with line silence, as a phone line does
        answer_text = await logged_answer(embedded_server, peer.call_sid, ANSWER_TIMEOUT_S)
        # Every reply chunk was sent before its transcript; wait until Twilio has played the last one.
        await peer.wait_until(lambda: bool(peer.marks) and all(m.outcome == "played" for m in peer.marks))
        turn_seconds = time.monotonic() - began
        await peer.stop()
        async with asyncio.timeout(10):
            await peer.closed.wait()
    finally:
        await peer.close()
    assert peer.close_code == 1000

    # The server heard the question and answered it.
    heard_question = said(embedded_server.log_text(), peer.call_sid, "caller")
    assert len(heard_question) == 1 and QUESTION_WORDS <= words(heard_question[0]), heard_question
    assert ANSWER_WORD in words(answer_text), answer_text

    # On the wire: μ-law media frames of the engine's 50 ms chunks, each followed by its mark.
    frames = peer.media_frames()
    assert frames and all(0 < len(frame) <= REPLY_CHUNK_BYTES for frame in frames)
    assert sum(len(frame) == REPLY_CHUNK_BYTES for frame in frames) >= len(frames) - 1
    events = [message["event"] for message in peer.outbound]
    assert events == ["media", "mark"] * len(frames), events[:10]
    assert not peer.clears and not peer.bad_outbound
    assert peer.received_ms >= MIN_ANSWER_MS

    # The audio is the answer in speech: decoded at 8 kHz, Whisper hears the words of the transcript.
    spoken = soxr.resample(float_from_mulaw(bytes(peer.agent_audio)), SAMPLE_RATE, 16_000, quality="HQ")
    heard = await asyncio.to_thread(independent_transcript, spoken.astype(np.float32))
    expected = words(answer_text)
    overlap = len(expected & words(heard)) / max(1, len(expected))
    assert overlap >= MIN_WORD_OVERLAP, (answer_text, heard)
    print(f"turn {turn_seconds:.1f} s; caller {heard_question[0]!r}; agent {answer_text!r}; heard {heard!r}")
