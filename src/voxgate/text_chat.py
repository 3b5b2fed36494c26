"""``voxgate talk --text``: chat with an agent over a text session (HOSTED.md §5) from a terminal.

Each line typed (or given with ``--say``) is one user turn (``conversation.message``); the agent's words
are printed as they stream in (``transcript.agent.delta``). A stored agent is opened as a text session by
sending its ``agent_id`` with ``input.type``/``output.type`` ``"text"``. Tool calls are printed and answered
with an error (a terminal runs no tools).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

TEXT_TYPES = {"input": {"type": "text"}, "output": {"type": "text"}}
NO_TOOLS = json.dumps({"error": "This client cannot run tools."})


class ChatError(Exception):
    pass


def session_update(agent_id: str | None, system_prompt: str | None, greeting: str | None) -> dict[str, Any]:
    if agent_id is not None:
        return {"type": "session.update", "session": {"agent_id": agent_id, **TEXT_TYPES}}
    session: dict[str, Any] = {"system_prompt": system_prompt or "", **TEXT_TYPES}
    if greeting:
        session["greeting"] = greeting
    return {"type": "session.update", "session": session}


async def _stdin_lines() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip():
            yield line.strip()


async def _given(lines: Sequence[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def chat(
    url: str,
    api_key: str,
    lines: Sequence[str] | None,
    *,
    agent_id: str | None = None,
    system_prompt: str | None = None,
    greeting: str | None = None,
    write: Callable[[str], None] = lambda text: print(text, end="", flush=True),
) -> list[str]:
    """Chat; returns the agent's replies (their final texts). ``lines``: None reads standard input."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
        await ws.send(json.dumps(session_update(agent_id, system_prompt, greeting)))
        ready = await _next(ws, ("session.ready",))
        replies: list[str] = []
        if ready.get("config", {}).get("greeting"):
            replies.append(await _reply(ws, write))
        async for line in _stdin_lines() if lines is None else _given(lines):
            write(f"> {line}\n")
            await ws.send(json.dumps({"type": "conversation.message", "role": "user", "content": line}))
            replies.append(await _reply(ws, write))
        await ws.send(json.dumps({"type": "session.end"}))
        return replies


async def _reply(ws: ClientConnection, write: Callable[[str], None]) -> str:
    """Print one answer as it streams in (with the reply that follows its tool calls' results); answer its
    tool calls; return its final text."""
    text, calls_pending = "", False
    kinds = ("transcript.agent.delta", "transcript.agent", "tool.call", "reply.done")
    while True:
        event = await _next(ws, kinds)
        if event["type"] == "reply.done":
            if not calls_pending:
                return text
            calls_pending = False  # the agent answers again once it has the results
        elif event["type"] == "transcript.agent.delta":
            write(event["delta"])
        elif event["type"] == "transcript.agent":
            text = event["text"]
            write("\n")
        else:
            calls_pending = True
            write(f"[tool.call {event['name']} {json.dumps(event.get('arguments', {}))}]\n")
            result = {
                "type": "tool.result",
                "call_id": event["call_id"],
                "result": NO_TOOLS,
                "is_error": True,
            }
            await ws.send(json.dumps(result))


async def _next(ws: ClientConnection, kinds: tuple[str, ...]) -> dict[str, Any]:
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "session.error" and event.get("code") not in (None, "internal_error"):
            raise ChatError(f"{event['code']}: {event.get('message', '')}")
        if event["type"] in kinds:
            return event  # type: ignore[no-any-return]
