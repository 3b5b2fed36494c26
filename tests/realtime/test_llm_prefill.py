"""The session prefills the LLM ahead of each reply (in-process engine, recording LLM double)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from tests import doubles
from tests.realtime.engine import close_session, doubles_stack, make_session
from voxgate.protocol.events import ReplyCreate, SessionUpdate
from voxgate.speech.base import ChatMessage, ToolSchema


class _WarmRecordingLLM(doubles.ScriptedLLM):
    def __init__(self) -> None:
        super().__init__()
        self.warmed: asyncio.Queue[list[ChatMessage]] = asyncio.Queue()

    async def warm(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> None:
        assert session_key
        self.warmed.put_nowait(list(messages))


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
