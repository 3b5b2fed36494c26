"""The session prefills the LLM ahead of each reply (in-process engine, recording LLM double)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests import doubles
from tests.realtime.engine import close_session, doubles_stack, input_audio, make_session
from voxgate.conversation.input_rate import InputRateBudget
from voxgate.protocol.events import ReplyCreate, SessionUpdate
from voxgate.speech.base import ChatMessage, ToolSchema


class _WarmRecordingLLM(doubles.ScriptedLLM):
    def __init__(self) -> None:
        super().__init__()
        self.warmed: asyncio.Queue[list[ChatMessage]] = asyncio.Queue()

        self.forgotten: list[str] = []

    @property
    def busy(self) -> bool:
        return False

    async def warm(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> None:
        assert session_key
        self.warmed.put_nowait(list(messages))

    async def anticipate(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> int:
        await self.warm(messages, tools, session_key=session_key)
        return 0

    def forget_session(self, session_key: str) -> None:
        self.forgotten.append(session_key)


async def test_the_conversation_is_prefilled_at_ready_and_after_each_reply(tmp_path: Path) -> None:
    stack = doubles_stack()
    llm = _WarmRecordingLLM()
    stack.llm = llm
    session, sink = make_session(tmp_path, stack=stack)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={"system_prompt": "SAY: Hello there."}))
    at_ready = await asyncio.wait_for(llm.warmed.get(), 5)
    assert [m.role for m in at_ready] == ["system"]

    session.push(ReplyCreate())
    await sink.wait_for(lambda e: e["type"] == "reply.done")
    after_reply = await asyncio.wait_for(llm.warmed.get(), 5)
    assert [(m.role, m.content) for m in after_reply[1:]] == [("assistant", "Hello there.")]
    await close_session(session, task)
    assert llm.forgotten == [session.session_id]  # the session released its prompt cache


async def test_the_users_words_are_prefilled_while_they_speak_and_pause(tmp_path: Path) -> None:
    said = "I would like to book a table for two"
    stack = doubles_stack()
    stack.stt = doubles.FixedTextSTT(said)  # partials hear the first two words, finals the whole line
    llm = _WarmRecordingLLM()
    stack.llm = llm
    session, sink = make_session(tmp_path, stack=stack)
    session.input_rate = InputRateBudget(60)  # the test streams faster than real time
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={"system_prompt": "SAY: Okay."}))
    assert [m.role for m in await asyncio.wait_for(llm.warmed.get(), 5)] == ["system"]

    for _ in range(15):
        session.push(input_audio(doubles.tone(300, 100)))
    await sink.wait_for(lambda e: e["type"] == "transcript.user.delta")
    while_speaking = await asyncio.wait_for(llm.warmed.get(), 5)
    # the last word of a partial may be cut short: only the words before it
    assert [(m.role, m.content) for m in while_speaking] == [("system", "SAY: Okay."), ("user", "I")]
    assert not any(e["type"] == "transcript.user" for e in sink.events)

    silence = input_audio(np.zeros(1600, np.float32))  # 100 ms
    session.push(silence)  # a pause that starts the speculative decode but does not end the turn
    session.push(silence)
    while_pausing = await asyncio.wait_for(llm.warmed.get(), 5)
    assert [(m.role, m.content) for m in while_pausing] == [("system", "SAY: Okay."), ("user", said)]
    assert not any(e["type"] == "input.speech.stopped" for e in sink.events)
    for _ in range(13):
        session.push(silence)

    await sink.wait_for(lambda e: e["type"] == "reply.done")
    after_reply = await asyncio.wait_for(llm.warmed.get(), 5)
    assert [m.role for m in after_reply] == ["system", "user", "assistant"]
    assert llm.warmed.empty()  # nothing prefilled the user's words during the reply
    await close_session(session, task)
