"""What the realtime engine itself adds, with instant provider doubles (no model time).

1. Reply latency: from the end-of-turn decision (``input.speech.stopped``) to the first ``reply.audio``
   handed to the transport (serialised to JSON), over many user turns of one in-process Session.
2. Input-path CPU per 20 ms ``input.audio`` frame: base64 decode, PCM decode, resampling 24 kHz -> 16 kHz,
   Silero VAD (the real ONNX model, 1 thread) and turn-taking, measured with ``time.process_time``.

Run: ``.venv/bin/python bench/server_overhead.py [--turns 100] [--frames 3000]``. Prints percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import doubles

from voxgate.audio.codecs import encode_audio
from voxgate.audio.resample import resample, to_int16
from voxgate.config import Settings
from voxgate.conversation.dependencies import SessionDependencies
from voxgate.conversation.notices import TransportClosed
from voxgate.conversation.session import Session
from voxgate.conversation.timings import TurnTimings
from voxgate.protocol.events import InputAudio, ServerEvent, SessionUpdate
from voxgate.speech.base import PcmAudio, SpeechStack
from voxgate.store.checkpoints import MemoryCheckpointStore


class InstantTTS:
    """60 ms of tone per call, at once."""

    sample_rate = 24_000

    def has_voice(self, voice_id: str) -> bool:
        return True

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        yield (doubles.tone(300, 60, rate=24_000) * 16_000).astype(np.int16)


class InstantSTT:
    async def transcribe(self, audio: np.ndarray, *, keyterms: object = (), partial: bool = False) -> str:
        return "hello there"


class TurnRecorder:
    """The sessions' telemetry here: keeps every finished turn."""

    def __init__(self) -> None:
        self.turns: list[TurnTimings] = []

    def turn_finished(self, timings: TurnTimings) -> None:
        self.turns.append(timings)

    def input_frame_processed(self, lag_seconds: float) -> None:
        pass


class BenchSink:
    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.ready = asyncio.Event()

    async def send(self, event: ServerEvent) -> None:
        event.to_json()
        kind = event.type  # type: ignore[attr-defined]
        if kind == "reply.done":
            self.done.set()
        elif kind == "session.ready":
            self.ready.set()

    async def close(self, code: int, reason: str = "") -> None:
        pass


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"n={len(values)} p50={pick(0.5):.3f} p95={pick(0.95):.3f} p99={pick(0.99):.3f} "
        f"max={ordered[-1]:.3f} mean={statistics.fmean(values):.3f}"
    )


def wire_frames(audio16k: np.ndarray, frame_ms: int = 20) -> list[InputAudio]:
    pcm = to_int16(resample(audio16k, 16_000, 24_000))
    step = 24 * frame_ms
    return [
        InputAudio(audio=base64.b64encode(encode_audio("audio/pcm", pcm[i : i + step])).decode())
        for i in range(0, pcm.size - step + 1, step)
    ]


def make_session(
    stack: SpeechStack, data_dir: Path, telemetry: TurnRecorder | None = None
) -> tuple[Session, BenchSink]:
    async def speech() -> SpeechStack:
        return stack

    async def no_agent(agent_id: str) -> None:
        return None

    deps = SessionDependencies(
        settings=Settings(data_dir=data_dir),
        speech=speech,
        load_agent=no_agent,
        checkpoints=MemoryCheckpointStore(30),
        project_id="bench",
        max_duration_seconds=3600,
        telemetry=telemetry or TurnRecorder(),
    )
    sink = BenchSink()
    return Session(deps, sink), sink


async def reply_latency(turns: int, data_dir: Path) -> list[float]:
    settings = Settings(data_dir=data_dir)
    stack = SpeechStack(
        vad=doubles.energy_vad(settings),
        stt=InstantSTT(),
        turn_detector=doubles.FixedTurnDetector(0.99),
        llm=doubles.ScriptedLLM(),
        tts=InstantTTS(),
    )
    recorder = TurnRecorder()
    session, sink = make_session(stack, data_dir, recorder)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    frames = wire_frames(np.concatenate([doubles.tone(400, 600), np.zeros(16 * 700, np.float32)]))
    for _ in range(turns):
        sink.done.clear()
        for frame in frames:
            session.push(frame)
        await asyncio.wait_for(sink.done.wait(), 10)
    session.push(TransportClosed())
    await task
    return [
        (t.first_audio_sent - t.end_of_turn) * 1000
        for t in recorder.turns
        if t.first_audio_sent is not None and t.end_of_turn is not None
    ]


async def input_cpu(frame_count: int, data_dir: Path) -> tuple[list[float], float]:
    from voxgate.speech.vad_silero import SileroVAD

    settings = Settings(data_dir=data_dir)
    stack = SpeechStack(
        vad=SileroVAD(settings, threads=1),
        stt=InstantSTT(),
        turn_detector=None,
        llm=doubles.ScriptedLLM(),
        tts=InstantTTS(),
    )
    session, sink = make_session(stack, data_dir)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    await asyncio.wait_for(sink.ready.wait(), 30)
    rng = np.random.default_rng(0)
    audio = np.concatenate(
        [
            doubles.tone(400, 1000) + rng.normal(0, 0.01, 16_000).astype(np.float32),
            np.zeros(16_000, np.float32),
        ]
    )
    frames = wire_frames(np.tile(audio, frame_count // 100 + 1))[:frame_count]
    per_frame: list[float] = []
    cpu_start = time.process_time()
    for frame in frames:
        started = time.perf_counter()
        await session._on_audio(frame, time.monotonic())  # the input path alone, without queue hops
        per_frame.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(frames)
    session.push(TransportClosed())
    await task
    return per_frame, cpu_ms


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        latencies = await reply_latency(args.turns, Path(tmp))
        print(f"end-of-turn decision -> first reply.audio (ms): {percentiles(latencies)}")
        per_frame, cpu_ms = await input_cpu(args.frames, Path(tmp))
        print(f"input path per 20 ms frame, wall (ms): {percentiles(per_frame)}")
        print(f"input path per 20 ms frame, CPU (ms): mean={cpu_ms:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
