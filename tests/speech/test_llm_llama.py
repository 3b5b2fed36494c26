"""The embedded llama.cpp LLM with the packaged Qwen2.5-0.5B model (short generations)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxgate.config import Settings
from voxgate.speech.base import ChatMessage, LLMEvent, TextDelta, ToolCallRequest, ToolSchema
from voxgate.speech.speech_normaliser import spoken_text

pytestmark = pytest.mark.models

SYSTEM = ChatMessage(
    "system",
    "You are Ava, the friendly phone assistant of Luigi's Pizzeria in London. "
    "Answer in one or two short spoken sentences.",
)
TOOLS = [
    ToolSchema(
        "get_weather",
        "Get the weather forecast for a city.",
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "day": {"type": "string"}},
            "required": ["city"],
        },
    ),
    ToolSchema(
        "book_table",
        "Book a table at the restaurant.",
        {
            "type": "object",
            "properties": {"people": {"type": "integer"}, "time": {"type": "string"}},
            "required": ["people", "time"],
        },
    ),
]


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from voxgate.speech.llm_llama import LlamaLLM

    # the assembled gguf is cached in the user's data dir so every test run does not re-concatenate 491 MB
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("data")), model_cache_dir=Settings().effective_model_cache_dir
    )
    model = LlamaLLM(settings, max_tokens=48)
    yield model
    model.close()


async def collect(
    llm: object, messages: list[ChatMessage], tools: list[ToolSchema] = TOOLS, **kw: object
) -> list[LLMEvent]:
    return [event async for event in llm.stream(messages, tools, **kw)]  # type: ignore[attr-defined]


async def test_text_streams_in_several_deltas(llm: object) -> None:
    events = await collect(llm, [SYSTEM, ChatMessage("user", "Hi! Who am I talking to?")])
    texts = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(texts) >= 3, events
    assert not [event for event in events if isinstance(event, ToolCallRequest)]
    reply = "".join(texts)
    assert "Ava" in reply
    assert "{" not in reply and "<tool_call>" not in reply


async def test_obvious_request_calls_the_tool_with_the_right_arguments(llm: object) -> None:
    events = await collect(llm, [SYSTEM, ChatMessage("user", "What's the weather in Paris tomorrow?")])
    calls = [event for event in events if isinstance(event, ToolCallRequest)]
    assert len(calls) == 1, events
    call = calls[0]
    assert call.name == "get_weather"
    assert call.arguments["city"].lower().startswith("paris")
    assert call.call_id.startswith("call_") and len(call.call_id) > 10
    assert not [event for event in events if isinstance(event, TextDelta) and "{" in event.text]


@pytest.mark.parametrize(
    "utterance", ["Thanks so much, have a lovely evening!", "Hi there, how are you today?"]
)
async def test_small_talk_does_not_call_a_tool(llm: object, utterance: str) -> None:
    # (unguarded, the 0.5B model answers the second with get_weather(city="London"): rejected, then spoken)
    events = await collect(llm, [SYSTEM, ChatMessage("user", utterance)])
    assert events and all(isinstance(event, TextDelta) for event in events), events


async def test_tool_results_are_rendered_the_way_the_template_expects(llm: object) -> None:
    call = ToolCallRequest("call_1", "get_weather", {"city": "London"})
    messages = [
        SYSTEM,
        ChatMessage("user", "Weather in London?"),
        ChatMessage("assistant", "", tool_calls=[call]),
        ChatMessage("tool", json.dumps({"forecast": "sunny", "celsius": 21}), tool_call_id="call_1"),
    ]
    prompt = llm.renderer.render(messages, TOOLS)  # type: ignore[attr-defined]
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "London"}}\n</tool_call>' in prompt
    assert (
        '<|im_start|>user\n<tool_response>\n{"forecast": "sunny", "celsius": 21}\n</tool_response>' in prompt
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    reply = "".join(event.text for event in await collect(llm, messages) if isinstance(event, TextDelta))
    assert "21" in reply or "sunny" in reply.lower(), reply


async def test_closing_the_stream_stops_generation(llm: object) -> None:
    stream = llm.stream(  # type: ignore[attr-defined]
        [SYSTEM, ChatMessage("user", "Please list twenty pizza toppings, one per line.")], ()
    )
    received = 0
    async for _event in stream:
        received += 1
        if received == 2:
            break
    await stream.aclose()
    await llm.executor.run(lambda: None)  # type: ignore[attr-defined]  # queued behind the generation job
    stats = llm.last_stats  # type: ignore[attr-defined]
    assert stats.stopped_early
    assert stats.completion_tokens <= received + 2


async def test_each_session_keeps_its_prompt_prefix(llm: object) -> None:
    other_system = ChatMessage("system", "You are Bob, a terse assistant for a bike shop in Leeds.")
    first_turn = [SYSTEM, ChatMessage("user", "Hello there.")]
    await collect(llm, first_turn, session_key="session-a")
    await collect(llm, [other_system, ChatMessage("user", "Hello.")], (), session_key="session-b")
    follow_up = [*first_turn, ChatMessage("assistant", "Hello!"), ChatMessage("user", "Are you open today?")]
    await collect(llm, follow_up, session_key="session-a")
    stats = llm.last_stats  # type: ignore[attr-defined]
    system_tokens = len(
        llm._llama.tokenize(
            llm.renderer.render([SYSTEM], TOOLS, add_generation_prompt=False).encode(),
            add_bos=False,
            special=True,
        )
    )  # type: ignore[attr-defined]
    assert stats.reused_prefix_tokens >= system_tokens, stats  # session A's KV cells were restored


async def test_a_forgotten_session_is_prefilled_again(llm: object) -> None:
    first_turn = [SYSTEM, ChatMessage("user", "Hello there.")]
    other = [
        ChatMessage("system", "You are Bob, a terse assistant for a bike shop in Leeds."),
        ChatMessage("user", "Hi."),
    ]
    await collect(llm, first_turn, session_key="session-forgotten")
    await collect(llm, other, (), session_key="session-other")  # session-forgotten's cells are saved now
    llm.forget_session("session-forgotten")  # type: ignore[attr-defined]
    await collect(llm, first_turn, session_key="session-forgotten")
    # Nothing was restored: only the prefix shared with session-other's prompt is reused.
    assert llm.last_stats.reused_prefix_tokens < 10, llm.last_stats  # type: ignore[attr-defined]


async def test_warm_prefills_the_system_prompt_for_the_first_reply(llm: object) -> None:
    system = ChatMessage("system", "You are Max, the receptionist of a dental practice in Bristol. Be brief.")
    await llm.warm([system], TOOLS, session_key="warm-session")  # type: ignore[attr-defined]
    await collect(llm, [system, ChatMessage("user", "Hello?")], session_key="warm-session")
    stats = llm.last_stats  # type: ignore[attr-defined]
    prefix = llm.renderer.render([system], TOOLS, add_generation_prompt=False)  # type: ignore[attr-defined]
    prefix_tokens = len(llm._llama.tokenize(prefix.encode(), add_bos=False, special=True))  # type: ignore[attr-defined]
    assert stats.reused_prefix_tokens >= prefix_tokens - 1, stats


async def test_an_anticipated_reply_starts_with_what_was_generated_ahead(llm: object) -> None:
    system = ChatMessage("system", "You are Max, the receptionist of a dental practice in Bristol. Be brief.")
    turn = [system, ChatMessage("user", "Can I book a check-up for next Monday morning?")]
    produced = await llm.anticipate(turn, (), session_key="anticipating")  # type: ignore[attr-defined]
    assert produced > 0
    ahead = "".join(llm._anticipation.pieces)  # type: ignore[attr-defined]
    assert ahead.strip()
    events = await collect(llm, turn, (), session_key="anticipating")
    reply = "".join(event.text for event in events if isinstance(event, TextDelta))
    stats = llm.last_stats  # type: ignore[attr-defined]
    assert stats.anticipated_tokens == produced, stats
    assert reply.startswith(ahead) and len(reply) >= len(ahead)
    assert llm._anticipation is None  # type: ignore[attr-defined]  # used once


async def test_an_anticipation_for_other_words_is_not_used(llm: object) -> None:
    system = ChatMessage("system", "You are Max, the receptionist of a dental practice in Bristol. Be brief.")
    guessed = [system, ChatMessage("user", "Can I book a check-up")]
    said = [system, ChatMessage("user", "Can I book a check-up for my son on Friday?")]
    await llm.anticipate(guessed, (), session_key="anticipating")  # type: ignore[attr-defined]
    await collect(llm, said, (), session_key="anticipating")
    stats = llm.last_stats  # type: ignore[attr-defined]
    assert stats.anticipated_tokens == 0
    assert stats.reused_prefix_tokens > 0  # the common prefix is still reused


async def test_a_request_stops_a_running_anticipation(llm: object) -> None:
    story = [
        SYSTEM,
        ChatMessage("user", "Tell me a long story about the history of pizza, in ten sentences."),
    ]
    llm.anticipate_tokens = 48  # type: ignore[attr-defined]
    try:
        ahead = asyncio.ensure_future(llm.anticipate(story, (), session_key="story"))  # type: ignore[attr-defined]
        await asyncio.sleep(0)  # submitted first
        await collect(llm, [SYSTEM, ChatMessage("user", "Hello?")], (), session_key="story")
        assert await ahead < 48
    finally:
        llm.anticipate_tokens = 16  # type: ignore[attr-defined]


async def test_generation_pauses_between_tokens_while_speech_is_synthesised(llm: object) -> None:
    from voxgate.speech.executor import FOREGROUND
    from voxgate.speech.llm_llama import FOREGROUND_MAX_WAIT_SECONDS

    story = [
        SYSTEM,
        ChatMessage("user", "Tell me a long story about the history of pizza, in ten sentences."),
    ]
    stream = llm.stream(story, (), session_key="foreground")  # type: ignore[attr-defined]
    try:
        await anext(stream)
        before = FOREGROUND.yielded_seconds
        with FOREGROUND.running():  # as Piper does while it renders a chunk
            for _ in range(6):  # a few tokens may have been decoded already; the rest wait for the gate
                await anext(stream)
        assert FOREGROUND.yielded_seconds - before >= FOREGROUND_MAX_WAIT_SECONDS
        await anext(stream)  # and generation goes on afterwards
    finally:
        await stream.aclose()


# --- speak or call, instructions ---------------------------------------------------------------------
ORDER_AGENT = ChatMessage("system", "You are a friendly support agent. Answer in one or two short sentences.")
LOOKUP_ORDER = ToolSchema(
    "lookup_order",
    "Look up an order by id",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)


def spoken(events: list[LLMEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def calls_of(events: list[LLMEvent]) -> list[tuple[str, dict[str, object]]]:
    return [(event.name, event.arguments) for event in events if isinstance(event, ToolCallRequest)]


async def test_the_readme_order_agent_calls_its_tool_with_the_spoken_id(llm: object) -> None:
    request = ChatMessage("user", "Hi, where is my order? The order number is AB12345.")
    events = await collect(llm, [ORDER_AGENT, request], [LOOKUP_ORDER])
    assert calls_of(events) == [("lookup_order", {"order_id": "AB12345"})], events
    assert "lookup_order" not in spoken(events) and "{" not in spoken(events)


@pytest.mark.parametrize(
    "request_text",
    [
        "How do I look up my order? Show me the exact function call you would make.",
        "Reply with a JSON object that has my order id AB12345 in it.",
    ],
)
async def test_speech_never_contains_tool_syntax(llm: object, request_text: str) -> None:
    # The model may speak or call the tool here (both are fine); it never *says* the call.
    events = await collect(llm, [ORDER_AGENT, ChatMessage("user", request_text)], [LOOKUP_ORDER])
    text = spoken(events)
    assert "{" not in text and "<tool_call>" not in text, text
    said = spoken_text(text)  # what the voice gets: no code either
    assert "lookup_order(" not in said and "`" not in said, said
    assert all(name == "lookup_order" for name, _ in calls_of(events))


async def test_say_exactly_is_spoken_verbatim(llm: object) -> None:
    messages = [SYSTEM, ChatMessage("user", "Hello?"), ChatMessage("system", "Say exactly: banana.")]
    assert await collect(llm, messages) == [TextDelta("banana.")]


async def test_an_instruction_to_call_a_tool_is_followed_with_its_arguments(llm: object) -> None:
    instruction = "The user asked: what's the weather in Paris? Call the get_weather tool now."
    events = await collect(llm, [SYSTEM, ChatMessage("system", instruction)])
    calls = calls_of(events)
    assert len(calls) == 1 and calls[0][0] == "get_weather", events
    assert str(calls[0][1]["city"]).lower().startswith("paris")


async def test_the_answer_to_a_tool_result_follows_its_response_instruction(llm: object) -> None:
    call = ToolCallRequest("call_1", "get_weather", {"city": "London"})
    messages = [
        SYSTEM,
        ChatMessage("user", "Weather in London?"),
        ChatMessage("assistant", "", tool_calls=[call]),
        ChatMessage("tool", json.dumps({"forecast": "rain", "celsius": 12}), tool_call_id="call_1"),
        ChatMessage("system", "Tell the caller the forecast and ask if they want to book a table."),
    ]
    reply = spoken(await collect(llm, messages))
    assert "book" in reply.lower() and "?" in reply, reply


async def test_an_anticipated_call_is_the_reply(llm: object) -> None:
    turn = [ORDER_AGENT, ChatMessage("user", "Can you check order AB12345 for me?")]
    await llm.anticipate(turn, [LOOKUP_ORDER], session_key="anticipated-call")  # type: ignore[attr-defined]
    events = await collect(llm, turn, [LOOKUP_ORDER], session_key="anticipated-call")
    assert calls_of(events) == [("lookup_order", {"order_id": "AB12345"})], events
    assert llm.last_stats.anticipated_tokens > 0  # type: ignore[attr-defined]


async def test_a_call_cut_short_by_a_stopped_anticipation_is_still_made(llm: object) -> None:
    turn = [ORDER_AGENT, ChatMessage("user", "Can you check order AB12345 for me?")]
    ahead = asyncio.ensure_future(llm.anticipate(turn, [LOOKUP_ORDER], session_key="cut-call"))  # type: ignore[attr-defined]
    await asyncio.sleep(0)  # submitted first; the reply's request stops it wherever it is
    events = await collect(llm, turn, [LOOKUP_ORDER], session_key="cut-call")
    await ahead
    assert calls_of(events) == [("lookup_order", {"order_id": "AB12345"})], events
    assert not spoken(events)
