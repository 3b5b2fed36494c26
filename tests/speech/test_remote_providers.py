"""Remote STT, TTS and chat-completions providers against real HTTP servers on loopback.

A small FastAPI app under uvicorn (started in the test's event loop on a pre-bound socket) checks the
shape of every request and answers like an OpenAI-compatible server would.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import wave
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from voxgate.config import Settings
from voxgate.outbound.policy import OutboundPolicy
from voxgate.speech.base import (
    ChatMessage,
    LanguageModelError,
    SpeechServiceError,
    TextDelta,
    ToolCallRequest,
    ToolSchema,
)
from voxgate.speech.llm_openai import OpenAILLM
from voxgate.speech.stt_openai import OpenAISTT
from voxgate.speech.tool_call_parsing import (
    ToolCallStreamParser,
    caller_context,
    is_grounded,
    parse_tool_calls,
)
from voxgate.speech.tts_openai import OpenAITTS

from .fixtures import espeak_available, espeak_speech


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data -> {field: (filename, bytes)} with the standard library's MIME parser."""
    message = BytesParser(policy=default_policy).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart(), content_type
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


def build_app(recorder: Recorder) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer sk-test":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        form = parse_multipart(request.headers["content-type"], await request.body())
        with wave.open(io.BytesIO(form["file"][1]), "rb") as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
        recorder.requests.append(
            {
                "model": form["model"][1].decode(),
                "prompt": form["prompt"][1].decode() if "prompt" in form else None,
                "filename": form["file"][0],
                "wav": shape,
            }
        )
        return JSONResponse({"text": f" heard {shape[3]} samples "})

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        body = await request.json()
        recorder.requests.append(body)
        if body.get("response_format") != "pcm" or not body.get("input"):
            return JSONResponse({"error": {"message": "unsupported"}}, status_code=400)
        if body.get("voice") == "no-such-voice":
            return JSONResponse({"error": {"message": "unknown voice"}}, status_code=400)
        tone = (np.sin(np.arange(2400 * 3) / 10) * 8000).astype("<i2").tobytes()  # 0.3 s at 24 kHz

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(tone), 1001):  # odd sizes: samples split across chunks
                yield tone[start : start + 1001]

        return StreamingResponse(chunks(), media_type="audio/pcm")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        recorder.requests.append(body)
        if body["model"] == "missing-model":
            return JSONResponse({"error": {"message": "model 'missing-model' not found"}}, status_code=404)

        def sse(delta: dict[str, Any]) -> str:
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
            return f"data: {json.dumps(chunk)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield sse({"role": "assistant", "content": "Let me check"})
            yield sse({"content": " that."})
            call = {"index": 0, "id": "call_abc", "type": "function"}
            yield sse({"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]})
            for piece in ['{"city": ', '"Lon', 'don"}']:
                yield sse({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue in the backlog until uvicorn accepts them: no start-up wait
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(build_app(recorder), log_level="warning", lifespan="off"))
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    yield f"http://127.0.0.1:{port}/v1", recorder
    uv.should_exit = True
    await task
    sock.close()


def settings_for(base_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, openai_base_url=base_url, openai_api_key="sk-test", **overrides)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")
async def test_stt_uploads_a_16k_mono_wav(server: tuple[str, Recorder], tmp_path: Path) -> None:
    base_url, recorder = server
    stt = OpenAISTT(settings_for(base_url, tmp_path, openai_stt_model="whisper-large"))
    audio = espeak_speech("What is the weather in London tomorrow?")
    text = await stt.transcribe(audio, keyterms=["London", "Luigi"])
    assert text == f"heard {len(audio)} samples"
    assert recorder.requests == [
        {
            "model": "whisper-large",
            "prompt": "London, Luigi",
            "filename": "audio.wav",
            "wav": (1, 2, 16_000, len(audio)),
        }
    ]
    assert await stt.transcribe(audio, partial=True) == ""  # partials are not sent
    assert len(recorder.requests) == 1
    await stt.aclose()


async def test_stt_http_error_is_a_speech_service_error(server: tuple[str, Recorder], tmp_path: Path) -> None:
    base_url, _ = server
    stt = OpenAISTT(Settings(data_dir=tmp_path, stt_base_url=base_url, openai_api_key="wrong"))
    with pytest.raises(SpeechServiceError, match=r"HTTP 401.*bad key"):
        await stt.transcribe(np.zeros(1600, np.float32))
    await stt.aclose()


async def test_tts_streams_24k_pcm_in_chunks(server: tuple[str, Recorder], tmp_path: Path) -> None:
    base_url, recorder = server
    tts = OpenAITTS(settings_for(base_url, tmp_path, voice_map="ivy=openai:shimmer,james=piper:joe"))
    chunks = [chunk async for chunk in tts.synthesize("Hello there.", voice_id="ivy")]
    assert tts.sample_rate == 24_000
    assert len(chunks) > 1 and all(chunk.dtype == np.int16 for chunk in chunks)
    expected = (np.sin(np.arange(2400 * 3) / 10) * 8000).astype(np.int16)
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    assert recorder.requests == [
        {"model": "tts-1", "input": "Hello there.", "voice": "shimmer", "response_format": "pcm"}
    ]
    assert tts.remote_voice("james") == "onyx"  # a piper mapping does not apply to the remote engine
    assert tts.has_voice("ivy") and not tts.has_voice("nobody")
    await tts.aclose()


async def test_tts_http_error_is_a_speech_service_error(server: tuple[str, Recorder], tmp_path: Path) -> None:
    base_url, _ = server
    tts = OpenAITTS(settings_for(base_url, tmp_path, voice_map="ivy=openai:no-such-voice"))
    with pytest.raises(SpeechServiceError, match=r"HTTP 400.*unknown voice"):
        async for _ in tts.synthesize("Hello.", voice_id="ivy"):
            pass
    assert [chunk async for chunk in tts.synthesize("   ", voice_id="ivy")] == []  # nothing to say
    await tts.aclose()


async def test_chat_tool_call_deltas_are_accumulated(server: tuple[str, Recorder], tmp_path: Path) -> None:
    base_url, recorder = server
    llm = OpenAILLM(settings_for(base_url, tmp_path, openai_llm_model="test-model"))
    tools = [ToolSchema("get_weather", "Weather for a city", {"type": "object", "properties": {}})]
    history = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather?"),
        ChatMessage("assistant", "", tool_calls=[ToolCallRequest("call_0", "get_weather", {"city": "Rome"})]),
        ChatMessage("tool", '{"celsius": 30}', tool_call_id="call_0"),
        ChatMessage("user", "And London?"),
    ]
    events = [event async for event in llm.stream(history, tools)]
    assert events == [
        TextDelta("Let me check"),
        TextDelta(" that."),
        ToolCallRequest("call_abc", "get_weather", {"city": "London"}),
    ]
    sent = recorder.requests[0]
    assert sent["stream"] is True and sent["model"] == "test-model"
    assert sent["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    assert sent["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            }
        ],
    }
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_0", "content": '{"celsius": 30}'}
    await llm.aclose()


async def test_a_byo_endpoint_streams_through_the_outbound_policy(server: tuple[str, Recorder]) -> None:
    """The agent's own endpoint goes through the policy client: allowed, it streams as usual; not allowed
    (a loopback address, no operator exception), nothing is sent."""
    base_url, recorder = server
    allowed = OpenAILLM.for_endpoint(base_url, "test-model", policy=OutboundPolicy.allowing(["127.0.0.1"]))
    events = [event async for event in allowed.stream([ChatMessage("user", "Weather?")])]
    assert TextDelta("Let me check") in events
    await allowed.aclose()
    sent = len(recorder.requests)
    refused = OpenAILLM.for_endpoint(base_url, "test-model", policy=OutboundPolicy())
    with pytest.raises(LanguageModelError, match="may not be called: the URL must use https"):
        async for _ in refused.stream([ChatMessage("user", "Weather?")]):
            pass
    await refused.aclose()
    assert len(recorder.requests) == sent


async def test_chat_http_error_is_a_language_model_error(
    server: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    """The error names the status; the server's answer (it may echo anything) goes to the log only."""
    base_url, _ = server
    llm = OpenAILLM.for_endpoint(base_url, "missing-model", "sk-test")
    with pytest.raises(LanguageModelError, match=r"HTTP 404$"):
        async for _ in llm.stream([ChatMessage("user", "hi")]):
            pass
    assert "missing-model" in caplog.text


async def test_unreachable_and_silent_servers(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here now
    llm = OpenAILLM.for_endpoint(f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(LanguageModelError, match="cannot reach"):
        async for _ in llm.stream([ChatMessage("user", "hi")]):
            pass
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts (in the backlog) but never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    llm = OpenAILLM.for_endpoint(url, "m", timeout_seconds=0.3)
    with pytest.raises(LanguageModelError, match="timed out"):
        async for _ in llm.stream([ChatMessage("user", "hi")]):
            pass
    stt = OpenAISTT(Settings(data_dir=tmp_path, stt_base_url=url), timeout_seconds=0.3)
    with pytest.raises(SpeechServiceError, match="timed out"):
        await stt.transcribe(np.zeros(160, np.float32))
    silent.close()


# --- tool calls written as text (llama_cpp.server's JSON-in-content, Qwen's <tool_call> tags) ------
def feed_all(parser: ToolCallStreamParser, pieces: list[str]) -> list[Any]:
    events: list[Any] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    return [*events, *parser.finish()]


def test_tagged_tool_call_split_across_deltas_is_parsed() -> None:
    pieces = ["<tool", '_call>\n{"name": "get_weather", ', '"arguments": {"city": "Oslo"}}\n</tool_call>']
    events = feed_all(ToolCallStreamParser(["get_weather"]), pieces)
    assert len(events) == 1 and isinstance(events[0], ToolCallRequest)
    assert (events[0].name, events[0].arguments) == ("get_weather", {"city": "Oslo"})


def test_text_streams_through_and_a_trailing_tool_call_is_held_back() -> None:
    parser = ToolCallStreamParser(["transfer"])
    assert parser.feed("Sure, ") == [TextDelta("Sure, ")]
    assert parser.feed("one moment. <tool_") == [TextDelta("one moment. ")]
    assert parser.feed('call>{"name": "transfer", "arguments": "{}"}') == []
    events = parser.finish()
    assert len(events) == 1 and isinstance(events[0], ToolCallRequest) and events[0].arguments == {}


def test_text_that_only_starts_like_a_tag_is_spoken() -> None:
    assert feed_all(ToolCallStreamParser(["x"]), ["<", "3 you too"]) == [TextDelta("<3 you too")]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        '```json\n{"name": "get_weather", "parameters": {"city": "Oslo"}}\n```',
        '[{"type": "function", "function": {"name": "get_weather", '
        '"arguments": "{\\"city\\": \\"Oslo\\"}"}}]',
    ],
)
def test_bare_json_shapes_are_parsed(text: str) -> None:
    calls = parse_tool_calls(text, ["get_weather"])
    assert calls is not None and [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]


def test_unknown_tools_are_dropped_and_broken_json_is_not_spoken() -> None:
    assert parse_tool_calls('{"name": "launch_rockets", "arguments": {}}', ["get_weather"]) == []
    assert feed_all(ToolCallStreamParser(["get_weather"]), ['{"name": "get_wea']) == []
    assert parse_tool_calls("just words", ["get_weather"]) is None


ORDER = ToolSchema(
    "check_order_status",
    "Order status",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
BOOK = ToolSchema(
    "book_table",
    "Book",
    {
        "type": "object",
        "properties": {"people": {"type": "integer"}, "time": {"type": "string"}, "vip": {"type": "boolean"}},
        "required": ["people", "time"],
    },
)


@pytest.mark.parametrize(
    ("said", "schema", "arguments", "grounded"),
    [
        ("Where is my order AB12345?", ORDER, {"order_id": "AB12345"}, True),
        ("My order number is A B one two three four five.", ORDER, {"order_id": "AB12345"}, True),
        ("It's A B 1 2 3 4 5", ORDER, {"order_id": "12345"}, True),
        ("Do you have vegetarian pizzas?", ORDER, {"order_id": "12345"}, False),
        ("A table for four at eight tonight", BOOK, {"people": 4, "time": "20:00"}, True),
        ("Hi, how are you?", BOOK, {"people": 2, "time": "19:00"}, False),
        ("Hi, how are you?", ToolSchema("transfer", "", {"type": "object", "properties": {}}), {}, True),
    ],
)
def test_grounding_of_tool_arguments_in_what_the_caller_said(
    said: str, schema: ToolSchema, arguments: dict[str, Any], grounded: bool
) -> None:
    context = caller_context([ChatMessage("system", "Luigi's in London"), ChatMessage("user", said)])
    call = ToolCallRequest("call_1", schema.name, arguments)
    assert is_grounded(call, schema, context) is grounded
