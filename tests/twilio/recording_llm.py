"""The scripted LLM double (tests/doubles.py) that also records every conversation it is shown, so a
test can read exactly what the agent's LLM context held. Inject with
``VOXGATE_LLM=tests.twilio.recording_llm:recording_llm`` and ``VOXGATE_TEST_LLM_RECORD=<file>``: one JSON
line per LLM call, ``{"messages": [{"role": ..., "content": ...}, ...]}``."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from tests.doubles import ScriptedLLM
from voxgate.config import Settings
from voxgate.speech.base import ChatMessage, LLMEvent, ToolSchema


class RecordingLLM(ScriptedLLM):
    def __init__(self, record: Path) -> None:
        super().__init__()
        self.record = record

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        line = json.dumps({"messages": [{"role": m.role, "content": m.content} for m in messages]})
        await asyncio.to_thread(self._append, line)
        async for event in super().stream(messages, tools, session_key=session_key):
            yield event

    def _append(self, line: str) -> None:
        with self.record.open("a", encoding="utf-8") as file:
            file.write(line + "\n")


def recording_llm(settings: Settings) -> RecordingLLM:
    return RecordingLLM(Path(os.environ["VOXGATE_TEST_LLM_RECORD"]))


def read_records(record: Path) -> list[list[dict[str, str]]]:
    """Every conversation recorded so far, oldest first."""
    if not record.exists():
        return []
    return [json.loads(line)["messages"] for line in record.read_text(encoding="utf-8").splitlines()]
