"""voxgate talk against a fake voice-agent server on a loopback socket.

The fake server (websockets' own server, real sockets) plays the protocol's happy path
(PROTOCOL.md §13.1): it checks the key, answers ``session.update`` with ``session.ready``, speaks
an optional greeting, detects the user's speech by energy, "transcribes" it with a fixed text
(transcription is not under test here), replies with a known tone, and ends on ``session.end``.
The test speech is synthesised with espeak-ng and converted with sox at test time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.doubles import PHRASE_TONES, tone
from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env
from voxgate.audio import decode_audio, encode_audio, resample
from voxgate.talk_client import TalkError, load_wav, run_talk, speech_end_ms

API_KEY = "vg_test_key"
USER_TEXT = "What time is it?"
REPLY_TEXT = "It is noon."
RATE = 24_000

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng and sox"
)


def reply_tone(seconds: float = 0.6, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (8_000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@dataclass
class FakeAgentServer:
    """Scripted server side of one or more sessions; records what the client sent."""

    greeting: bool = False
    tool_call: bool = False
    interrupt_tool_reply: bool = False
    answer: bool = True
    silence_chunks_for_end: int = 8  # 400 ms of quiet ends the user's turn
    received: list[dict[str, Any]] = field(default_factory=list)
    audio_arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes)
    greeting_done_at: float | None = None
    reply_done_at: float | None = None
    tool_result_at: float | None = None
    headers: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handler(self, ws: ServerConnection) -> None:
        self.headers.append(ws.request.headers.get("Authorization") if ws.request else None)
        if self.headers[-1] != f"Bearer {API_KEY}":
            await self.send(ws, {"type": "session.error", "code": "unauthorized", "message": "bad key"})
            await ws.close(1008, "unauthorized")
            return
        loud, quiet, turn_open, turns = 0, 0, False, 0
        async for message in ws:
            event = json.loads(message)
            self.received.append(event)
            kind = event["type"]
            if kind == "session.update":
                await self.send(ws, {"type": "session.ready", "session_id": "sess_fake"})
                if self.greeting:
                    await self.speak(ws, "reply_greet", "Hi!", reply_tone(0.3, 660.0))
                    self.greeting_done_at = time.monotonic()
            elif kind == "input.audio":
                pcm = decode_audio("audio/pcm", base64.b64decode(event["audio"], validate=True))
                self.audio_arrivals.append((time.monotonic(), pcm.size * 2))
                level = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if pcm.size else 0.0
                if level > 300:
                    loud, quiet = loud + 1, 0
                    if not turn_open and loud >= 2:
                        turn_open = True
                        await self.send(ws, {"type": "input.speech.started"})
                        await self.send(ws, {"type": "transcript.user.delta", "text": "What"})
                else:
                    quiet += 1
                    if turn_open and quiet >= self.silence_chunks_for_end:
                        turn_open, loud, turns = False, 0, turns + 1
                        await self.end_user_turn(ws)
            elif kind == "tool.result":
                self.tool_result_at = time.monotonic()
                await self.speak(ws, "reply_2", "Your order ships today.", reply_tone(0.2, 330.0))
            elif kind == "session.end":
                await self.send(
                    ws,
                    {
                        "type": "session.ended",
                        "session_duration_seconds": 3.2,
                        "audio_duration_seconds": 2.0,
                        "timestamp": time.time(),
                    },
                )
                await ws.close(1000)
                return

    async def end_user_turn(self, ws: ServerConnection) -> None:
        await self.send(ws, {"type": "transcript.user.delta", "text": "What time is"})
        await self.send(ws, {"type": "input.speech.stopped"})
        await self.send(ws, {"type": "transcript.user", "text": USER_TEXT, "item_id": "item_1"})
        if not self.answer:
            return
        if self.tool_call:
            await self.send(ws, {"type": "reply.started", "reply_id": "reply_1"})
            await self.send(
                ws,
                {"type": "tool.call", "call_id": "call_1", "name": "order_status", "arguments": {"id": "A1"}},
            )
            await self.send(
                ws,
                {
                    "type": "transcript.agent",
                    "text": "Let me check.",
                    "reply_id": "reply_1",
                    "item_id": "item_2",
                    "interrupted": self.interrupt_tool_reply,
                },
            )
            self.reply_done_at = time.monotonic()
            status = "interrupted" if self.interrupt_tool_reply else "completed"
            await self.send(ws, {"type": "reply.done", "status": status, "reply_id": "reply_1"})
            return
        await self.speak(ws, "reply_1", REPLY_TEXT, reply_tone())

    async def speak(self, ws: ServerConnection, reply_id: str, text: str, audio: np.ndarray) -> None:
        await self.send(ws, {"type": "reply.started", "reply_id": reply_id})
        for start in range(0, audio.size, 2_400):  # 100 ms chunks, sent at once (the client buffers)
            data = base64.b64encode(encode_audio("audio/pcm", audio[start : start + 2_400])).decode()
            await self.send(ws, {"type": "reply.audio", "data": data, "reply_id": reply_id})
        await self.send(
            ws,
            {
                "type": "transcript.agent",
                "text": text,
                "reply_id": reply_id,
                "item_id": f"item_{reply_id}",
                "interrupted": False,
            },
        )
        self.reply_done_at = time.monotonic()
        await self.send(ws, {"type": "reply.done", "status": "completed", "reply_id": reply_id})

    @staticmethod
    async def send(ws: ServerConnection, event: dict[str, Any]) -> None:
        await ws.send(json.dumps(event))

    def sent_audio(self) -> np.ndarray:
        chunks = [
            decode_audio("audio/pcm", base64.b64decode(e["audio"]))
            for e in self.received
            if e["type"] == "input.audio"
        ]
        return np.concatenate(chunks)


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeAgentServer]:
    agent = FakeAgentServer()
    async with serve(agent.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        agent.url = f"ws://127.0.0.1:{port}/v1/ws"
        yield agent


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "What time is it?" spoken by espeak-ng, converted to 16 kHz stereo to exercise conversion."""
    folder = tmp_path_factory.mktemp("speech")
    raw, converted = folder / "raw.wav", folder / "question.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), USER_TEXT], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "2", str(converted)], check=True)
    return converted


async def test_happy_path_transcripts_audio_and_latency(
    fake_server: FakeAgentServer, speech_wav: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    out = tmp_path / "reply.wav"
    result = await run_talk(
        fake_server.url,
        API_KEY,
        speech_wav,
        out,
        system_prompt="Be brief.",
        voice="ivy",
        timeout=30,
        settle_s=0.3,
        on_line=lines.append,
    )
    assert fake_server.headers == [f"Bearer {API_KEY}"]
    first = fake_server.received[0]
    assert first == {
        "type": "session.update",
        "session": {"system_prompt": "Be brief.", "output": {"voice": "ivy"}},
    }
    assert fake_server.received[-1] == {"type": "session.end"}

    # the WAV went out as 50 ms PCM16 chunks at 24 kHz, mono, converted from 16 kHz stereo
    audio_events = [e for e in fake_server.received if e["type"] == "input.audio"]
    assert {len(base64.b64decode(e["audio"])) for e in audio_events} == {2_400}
    expected = load_wav(speech_wav, RATE)
    sent = fake_server.sent_audio()
    assert np.array_equal(sent[: expected.size], expected)
    assert not sent[expected.size + 1_200 :].any()  # followed by silence
    # never faster than real time: audio received by each arrival fits the elapsed time, give or
    # take one chunk plus the first arrival's own delay (a burst would overshoot by seconds)
    t0 = fake_server.audio_arrivals[0][0]
    received_ms = np.cumsum([size / 48 for _, size in fake_server.audio_arrivals])
    elapsed_ms = np.array([(t - t0) * 1000 for t, _ in fake_server.audio_arrivals])
    assert np.all(received_ms <= elapsed_ms + 100)

    assert result.session_id == "sess_fake"
    assert result.user_transcripts == [USER_TEXT]
    assert result.agent_transcripts == [REPLY_TEXT]
    assert result.ended is not None and result.ended["session_duration_seconds"] == 3.2
    assert not result.timed_out and result.errors == []
    assert f"user: {USER_TEXT}" in lines and f"agent: {REPLY_TEXT}" in lines
    assert "  user … What time is" in lines

    # the reply audio is saved exactly
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        saved = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.array_equal(saved, reply_tone())
    assert result.output_audio_ms == pytest.approx(600.0)

    # latency: the fake server answers 400 ms of quiet after the speech ends
    (turn,) = result.turn_latencies
    assert turn.first_audio_ms is not None and turn.transcript_ms is not None
    assert turn.first_audio_ms >= turn.reply_started_ms >= turn.transcript_ms > 0
    assert result.first_audio_latency_ms == turn.first_audio_ms


async def test_greeting_plays_before_the_user_speaks(
    fake_server: FakeAgentServer, speech_wav: Path, tmp_path: Path
) -> None:
    fake_server.greeting = True
    result = await run_talk(
        fake_server.url, API_KEY, speech_wav, tmp_path / "out.wav", greeting="Hi!", timeout=30, settle_s=0.3
    )
    assert fake_server.received[0]["session"] == {"greeting": "Hi!"}
    assert fake_server.greeting_done_at is not None
    assert fake_server.audio_arrivals[0][0] >= fake_server.greeting_done_at
    assert [r.greeting for r in result.replies] == [True, False]
    assert result.agent_transcripts == ["Hi!", REPLY_TEXT]
    assert result.output_audio_ms == pytest.approx(900.0)  # greeting + reply
    assert len(result.turn_latencies) == 1 and result.turn_latencies[0].first_audio_ms is not None


async def test_stored_agent_and_tool_call_answered_after_reply_done(
    fake_server: FakeAgentServer, speech_wav: Path
) -> None:
    fake_server.tool_call = True
    calls: list[tuple[str, dict[str, Any]]] = []

    async def order_status(name: str, arguments: dict[str, Any]) -> str:
        calls.append((name, arguments))
        return json.dumps({"status": "shipped"})

    result = await run_talk(
        fake_server.url,
        API_KEY,
        speech_wav,
        None,
        agent_id="agent_123",
        timeout=30,
        greeting_wait_s=0.2,
        settle_s=0.3,
        tool_handler=order_status,
    )
    assert fake_server.received[0] == {"type": "session.update", "session": {"agent_id": "agent_123"}}
    assert calls == [("order_status", {"id": "A1"})]
    results = [e for e in fake_server.received if e["type"] == "tool.result"]
    assert results == [{"type": "tool.result", "call_id": "call_1", "result": '{"status": "shipped"}'}]
    assert fake_server.tool_result_at is not None and fake_server.reply_done_at is not None
    assert (
        result.tool_calls[0].reply_id == "reply_1" and result.tool_calls[0].result == '{"status": "shipped"}'
    )
    assert result.agent_transcripts == ["Let me check.", "Your order ships today."]
    assert result.output_path is None


async def test_tool_call_without_handler_gets_an_error_result(
    fake_server: FakeAgentServer, speech_wav: Path
) -> None:
    fake_server.tool_call = True
    result = await run_talk(fake_server.url, API_KEY, speech_wav, None, timeout=30, settle_s=0.3)
    (sent,) = [e for e in fake_server.received if e["type"] == "tool.result"]
    assert "not available" in json.loads(sent["result"])["error"]
    assert len(result.replies) == 2


async def test_tool_results_of_an_interrupted_reply_are_dropped(
    fake_server: FakeAgentServer, speech_wav: Path
) -> None:
    fake_server.tool_call = True
    fake_server.interrupt_tool_reply = True
    asked: list[str] = []
    result = await run_talk(
        fake_server.url,
        API_KEY,
        speech_wav,
        None,
        timeout=30,
        settle_s=0.3,
        tool_handler=lambda name, _arguments: asked.append(name) or "{}",
    )
    assert [e for e in fake_server.received if e["type"] == "tool.result"] == []
    assert asked == []
    assert result.tool_calls[0].result is None
    assert [(r.status, r.interrupted) for r in result.replies] == [("interrupted", True)]
    assert not result.timed_out and fake_server.received[-1] == {"type": "session.end"}


async def test_wrong_key_is_a_clear_error(fake_server: FakeAgentServer, speech_wav: Path) -> None:
    with pytest.raises(TalkError, match="unauthorized") as caught:
        await run_talk(fake_server.url, "wrong", speech_wav, None, timeout=5)
    assert caught.value.code == "unauthorized"


async def test_no_answer_times_out_and_still_ends_the_session(
    fake_server: FakeAgentServer, speech_wav: Path
) -> None:
    fake_server.answer = False
    result = await run_talk(fake_server.url, API_KEY, speech_wav, None, timeout=3, settle_s=0.3)
    assert result.timed_out
    assert result.user_transcripts == [USER_TEXT]
    assert fake_server.received[-1] == {"type": "session.end"}
    assert result.ended is not None


async def test_connection_refused_is_a_clear_error(speech_wav: Path) -> None:
    with pytest.raises(TalkError, match="cannot connect"):
        await run_talk("ws://127.0.0.1:9/v1/ws", API_KEY, speech_wav, None, timeout=5)


async def test_not_a_wav_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"definitely not RIFF")
    with pytest.raises(TalkError, match="not a PCM WAV"):
        await run_talk("ws://127.0.0.1:9/v1/ws", API_KEY, bogus, None)
    with pytest.raises(TalkError, match="not found"):
        await run_talk("ws://127.0.0.1:9/v1/ws", API_KEY, tmp_path / "missing.wav", None)


def test_agent_id_with_inline_fields_is_rejected_before_connecting(speech_wav: Path) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        asyncio.run(run_talk("ws://127.0.0.1:9/v1/ws", API_KEY, speech_wav, None, agent_id="a", voice="ivy"))


def test_load_wav_converts_rate_channels_and_width(tmp_path: Path, speech_wav: Path) -> None:
    eight_bit = tmp_path / "u8.wav"
    subprocess.run(["sox", str(speech_wav), "-b", "8", "-r", "8000", "-c", "1", str(eight_bit)], check=True)
    reference = load_wav(speech_wav, RATE)
    coarse = load_wav(eight_bit, RATE)
    assert abs(coarse.size - reference.size) <= 3
    assert speech_end_ms(coarse, RATE) == pytest.approx(speech_end_ms(reference, RATE), abs=60)
    with wave.open(str(speech_wav)) as wav:
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    mono_16k = stereo.mean(axis=1).astype(np.float32) / 32768
    expected = resample(mono_16k, 16_000, RATE)
    assert np.max(np.abs(reference / 32768 - expected)) < 1e-3


# --- against the real voxgate server (speech doubles: marker tones stand for phrases) ------------


@pytest.fixture(scope="module")
def voxgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("talk"), env=doubles_env()) as server:
        yield server


async def test_talk_to_the_real_server(voxgate_server: LiveServer, tmp_path: Path) -> None:
    speech = tmp_path / "hello.wav"
    marker = np.concatenate([tone(PHRASE_TONES["hello there"], 900), np.zeros(1_600, np.float32)])
    with wave.open(str(speech), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(np.round(marker * 32767).astype("<i2").tobytes())
    out = tmp_path / "agent.wav"
    result = await run_talk(
        voxgate_server.ws_url,
        voxgate_server.api_key,
        speech,
        out,
        system_prompt="Be brief.",
        greeting="Hi there!",
        timeout=30,
        settle_s=0.5,
    )
    assert result.session_id is not None and result.session_id.startswith("sess_")
    assert result.errors == []
    assert result.user_transcripts == ["hello there"]
    assert result.agent_transcripts == ["Hi there!", "You said hello there."]
    assert [r.status for r in result.replies] == ["completed", "completed"]
    assert result.ended is not None and result.close_code == 1000
    (turn,) = result.turn_latencies
    assert turn.first_audio_ms is not None and turn.first_audio_ms > 0
    with wave.open(str(out)) as wav:
        assert wav.getnframes() > 0
    assert result.output_audio_ms == pytest.approx(sum(r.audio_ms for r in result.replies))
