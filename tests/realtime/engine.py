"""Drive a :class:`Session` in-process (no socket): the transport-agnostic engine with provider doubles."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from pathlib import Path

from tests import doubles
from voxgate.audio.codecs import encode_audio
from voxgate.audio.resample import resample, to_int16
from voxgate.config import Settings
from voxgate.conversation.dependencies import SessionDependencies
from voxgate.conversation.notices import TransportClosed
from voxgate.conversation.session import Session
from voxgate.conversation.session_telemetry import SessionTelemetry, TurnLog
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.events import InputAudio, ServerEvent
from voxgate.speech.base import FloatAudio, SpeechStack
from voxgate.store.checkpoints import MemoryCheckpointStore


@dataclass
class MemorySink:
    events: list[dict] = field(default_factory=list)
    close_code: int | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, event: ServerEvent) -> None:
        self.events.append(event.to_wire())
        self.arrived.set()

    async def close(self, code: int, reason: str = "") -> None:
        self.close_code = code

    async def wait_for(self, predicate, timeout: float = 5.0) -> dict:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self.arrived.clear()
                await self.arrived.wait()


def doubles_stack() -> SpeechStack:
    settings = Settings()
    return SpeechStack(
        vad=doubles.energy_vad(settings),
        stt=doubles.tone_stt(settings),
        turn_detector=doubles.fixed_turn_detector(settings),
        llm=doubles.scripted_llm(settings),
        tts=doubles.tone_tts(settings),
    )


def make_session(
    tmp_path: Path,
    *,
    stack: SpeechStack | None = None,
    project_id: str = "p1",
    telemetry: SessionTelemetry | None = None,
) -> tuple[Session, MemorySink]:
    speech_stack = stack or doubles_stack()

    async def speech() -> SpeechStack:
        return speech_stack

    async def load_agent(agent_id: str) -> SessionConfig | None:
        return None

    deps = SessionDependencies(
        settings=Settings(data_dir=tmp_path),
        speech=speech,
        load_agent=load_agent,
        checkpoints=MemoryCheckpointStore(30),
        project_id=project_id,
        max_duration_seconds=3600,
        telemetry=telemetry or TurnLog(),
    )
    sink = MemorySink()
    return Session(deps, sink), sink


async def close_session(session: Session, task: asyncio.Task[None]) -> None:
    session.push(TransportClosed())
    await asyncio.wait_for(task, 5)


def input_audio(audio: FloatAudio) -> InputAudio:
    """``input.audio`` carrying 16 kHz float audio in the default format (``audio/pcm`` at 24 kHz)."""
    pcm = to_int16(resample(audio, 16_000, 24_000))
    return InputAudio(audio=base64.b64encode(encode_audio("audio/pcm", pcm)).decode())
