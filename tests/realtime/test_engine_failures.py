"""Provider failures inside a live session (in-process engine): the session reports them and stays open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np

from tests import doubles
from tests.realtime.engine import close_session, doubles_stack, input_audio, make_session
from voxgate.conversation.core import Phase
from voxgate.protocol.events import InputAudio, ReplyCreate, SessionUpdate
from voxgate.speech.base import ChatMessage, LLMEvent, TextDelta, ToolSchema


class _BrokenVadStream(doubles.EnergyVoiceActivityStream):
    def speech_probability(self, frame: np.ndarray) -> float:
        raise RuntimeError("vad exploded")


class _BrokenVad:
    def create_stream(self) -> _BrokenVadStream:
        return _BrokenVadStream()


class _FailingLLM:
    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        yield TextDelta("Half a sentence, then ")
        raise ConnectionError("the LLM went away")


def _audio_frame() -> InputAudio:
    return input_audio(doubles.tone(400, 100))


async def test_internal_failure_is_internal_error_and_session_stays_open(tmp_path: Path) -> None:
    stack = doubles_stack()
    stack.vad = _BrokenVad()
    session, sink = make_session(tmp_path, stack=stack)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    session.push(_audio_frame())
    error = await sink.wait_for(lambda e: e["type"] == "session.error")
    assert error["code"] == "internal_error"
    session.push(SessionUpdate(session={"system_prompt": "still here"}))
    await sink.wait_for(lambda e: e["type"] == "session.updated")
    assert session.phase is Phase.READY and sink.close_code is None
    await close_session(session, task)


async def test_failed_reply_ends_interrupted_with_a_non_fatal_internal_error(tmp_path: Path) -> None:
    stack = doubles_stack()
    stack.llm = _FailingLLM()
    session, sink = make_session(tmp_path, stack=stack)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    session.push(ReplyCreate())
    done = await sink.wait_for(lambda e: e["type"] == "reply.done")
    types = [e["type"] for e in sink.events if e["type"] not in ("reply.audio", "transcript.agent.delta")]
    assert types[-3:] == ["session.error", "transcript.agent", "reply.done"]
    error = next(e for e in sink.events if e["type"] == "session.error")
    assert error["code"] == "internal_error" and "the LLM went away" in error["message"]
    assert done["status"] == "interrupted" and sink.close_code is None
    agent = next(e for e in sink.events if e["type"] == "transcript.agent")
    assert agent["interrupted"] is True
    deltas = [e["delta"] for e in sink.events if e["type"] == "transcript.agent.delta"]
    assert "".join(deltas) == agent["text"]
    assert "reply.error" not in [e["type"] for e in sink.events]
    session.push(SessionUpdate(session={"system_prompt": "x"}))
    await sink.wait_for(lambda e: e["type"] == "session.updated")
    await close_session(session, task)
    assert session.task_count == 0
