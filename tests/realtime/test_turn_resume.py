"""A turn ended at a pause continues when the user goes on before the reply is heard (in-process engine).

The reply to a turn is tentative until its first audio is ready: speech before then continues the same
turn (one ``transcript.user``, one reply to the whole line); nothing of the dropped reply reaches the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np

from tests import doubles
from tests.realtime.engine import MemorySink, close_session, doubles_stack, input_audio, make_session
from voxgate.conversation.input_rate import InputRateBudget
from voxgate.conversation.session import Session
from voxgate.protocol.events import ReplyCreate, SessionUpdate
from voxgate.speech.base import ChatMessage, FloatAudio, LLMEvent, ToolSchema

FIRST_PART = "No, I said Tuesday."
WHOLE_LINE = "No, I said Tuesday, not Thursday."


class _LengthSTT:
    """Hears the whole line only in audio longer than its first part (1.5 s of speech)."""

    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        await asyncio.sleep(0)
        return WHOLE_LINE if audio.size > 16_000 * 2.2 else FIRST_PART


class _GatedLLM(doubles.ScriptedLLM):
    """Answers only once ``gate`` is set; records the conversation of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.requests: asyncio.Queue[list[ChatMessage]] = asyncio.Queue()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        self.requests.put_nowait(list(messages))
        await self.gate.wait()
        async for event in super().stream(messages, tools, session_key=session_key):
            yield event


def _speech(ms: int) -> list[FloatAudio]:
    return [doubles.tone(300, 100) for _ in range(ms // 100)]


def _silence(ms: int) -> list[FloatAudio]:
    return [np.zeros(1600, np.float32) for _ in range(ms // 100)]


def _types(events: list[dict]) -> list[str]:
    skipped = ("reply.audio", "transcript.agent.delta", "transcript.user.delta")
    return [e["type"] for e in events if e["type"] not in skipped]


async def _start(tmp_path: Path) -> tuple[Session, MemorySink, _GatedLLM, asyncio.Task[None]]:
    stack = doubles_stack()
    stack.stt = _LengthSTT()
    llm = _GatedLLM()
    stack.llm = llm
    session, sink = make_session(tmp_path, stack=stack)
    session.input_rate = InputRateBudget(60)  # the test streams faster than real time
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    await sink.wait_for(lambda e: e["type"] == "session.ready")
    return session, sink, llm, task


async def test_speech_before_the_reply_is_heard_continues_the_same_turn(tmp_path: Path) -> None:
    session, sink, llm, task = await _start(tmp_path)
    for frame in [*_speech(1500), *_silence(400)]:
        session.push(input_audio(frame))
    stopped = await sink.wait_for(lambda e: e["type"] == "input.speech.stopped")
    first_request = await asyncio.wait_for(llm.requests.get(), 5)
    assert first_request[-1] == ChatMessage("user", FIRST_PART)  # the reply is being prepared ...
    assert "transcript.user" not in _types(sink.events)  # ... but nothing of it went out
    assert "reply.started" not in _types(sink.events)

    mark = len(sink.events)
    for frame in [*_speech(800), *_silence(600)]:  # the user goes on
        session.push(input_audio(frame))
    await sink.wait_for(lambda e: e["type"] == "input.speech.stopped" and e is not stopped)
    llm.gate.set()
    done = await sink.wait_for(lambda e: e["type"] == "reply.done")

    assert done["status"] == "completed"
    types = _types(sink.events)
    assert types.count("input.speech.started") == 2 and types.count("input.speech.stopped") == 2
    assert types.count("transcript.user") == 1 and types.count("reply.started") == 1
    assert types[-4:] == ["transcript.user", "reply.started", "transcript.agent", "reply.done"]
    user = next(e for e in sink.events if e["type"] == "transcript.user")
    assert user["text"] == WHOLE_LINE  # decoded from the whole line's audio
    partials = [e for e in sink.events[mark:] if e["type"] == "transcript.user.delta"]
    assert partials and all(p.get("item_id") in (None, user["item_id"]) for p in partials)
    answered = await asyncio.wait_for(llm.requests.get(), 5)
    assert [(m.role, m.content) for m in answered if m.role != "system"] == [("user", WHOLE_LINE)]
    agent = next(e for e in sink.events if e["type"] == "transcript.agent")
    assert agent["text"] == f"You said {WHOLE_LINE}."
    await close_session(session, task)


async def test_reply_create_before_the_reply_is_heard_keeps_the_users_turn(tmp_path: Path) -> None:
    session, sink, llm, task = await _start(tmp_path)
    for frame in [*_speech(1500), *_silence(400)]:
        session.push(input_audio(frame))
    await asyncio.wait_for(llm.requests.get(), 5)
    assert "transcript.user" not in _types(sink.events)

    session.push(ReplyCreate(instructions="Say sorry."))
    requested = await asyncio.wait_for(llm.requests.get(), 5)
    llm.gate.set()
    await sink.wait_for(lambda e: e["type"] == "reply.done")
    # The dropped reply left no trace; the user's turn was announced and is in the new reply's prompt.
    assert _types(sink.events)[-5:] == [
        "input.speech.stopped",
        "transcript.user",
        "reply.started",
        "transcript.agent",
        "reply.done",
    ]
    assert ChatMessage("user", FIRST_PART) in requested
    await close_session(session, task)
