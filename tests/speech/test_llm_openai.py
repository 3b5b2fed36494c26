"""OpenAILLM end to end against a real OpenAI-compatible server: ``python -m llama_cpp.server`` with the
packaged Qwen2.5-0.5B model, started on a free loopback port by the test."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxgate.config import Settings
from voxgate.speech.base import ChatMessage, TextDelta, ToolCallRequest, ToolSchema
from voxgate.speech.llm_openai import OpenAILLM
from voxgate.speech.models import resolve_model

pytestmark = pytest.mark.models

SYSTEM = ChatMessage(
    "system",
    "You are Ava, the friendly phone assistant of Luigi's Pizzeria in London. "
    "Answer in one or two short spoken sentences.",
)
WEATHER = ToolSchema(
    "get_weather",
    "Get the weather forecast for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    gguf = resolve_model("qwen2.5-0.5b-instruct-q4km", Settings())
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--seed", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:  # uvicorn logs this line once the socket accepts requests
        seen.append(line)
        if "Uvicorn running on" in line:
            break
    else:
        process.kill()
        pytest.fail("llama_cpp.server exited before serving:\n" + "".join(seen[-20:]))
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_text_streams_from_the_server(server_url: str) -> None:
    llm = OpenAILLM.for_endpoint(server_url, "qwen", "unused")
    llm.max_tokens = 40
    events = [event async for event in llm.stream([SYSTEM, ChatMessage("user", "Hi, who is this?")])]
    assert len(events) >= 3 and all(isinstance(event, TextDelta) for event in events), events
    assert "Ava" in "".join(event.text for event in events if isinstance(event, TextDelta))
    await llm.aclose()


async def test_tool_call_comes_back_parsed(server_url: str, tmp_path: Path) -> None:
    llm = OpenAILLM(Settings(data_dir=tmp_path, openai_base_url=server_url, openai_llm_model="qwen"))
    llm.max_tokens = 60
    messages = [SYSTEM, ChatMessage("user", "What's the weather like in Berlin?")]
    events = [event async for event in llm.stream(messages, [WEATHER])]
    calls = [event for event in events if isinstance(event, ToolCallRequest)]
    assert len(calls) == 1, events
    assert calls[0].name == "get_weather" and calls[0].arguments["city"].lower().startswith("berlin")
    assert not any(isinstance(event, TextDelta) and "{" in event.text for event in events)
    await llm.aclose()
