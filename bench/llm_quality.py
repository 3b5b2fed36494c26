"""End-to-end agent quality: spoken requests through a real server with the embedded stack, scored on events.

Starts ``python -m voxgate serve`` on loopback with the default offline stack (Silero, Whisper tiny.en,
smart-turn, Qwen2.5-0.5B via llama.cpp, Piper with its voice variants), synthesises every caller line at
run time (Piper joe, 24 kHz), and plays each one into a fresh ``/v1/ws`` session at real-time pace,
followed by silence, as a microphone would. Scored on what comes back:

- **tool calls**: a request that needs a tool gets exactly one ``tool.call`` of that tool with the right
  arguments; one that does not gets none;
- **instructions** (``reply.create``): followed (a dictated text spoken verbatim, a named tool called,
  a fact given);
- **leaked syntax**: no JSON, tool-call tags, Markdown or code in any ``transcript.agent``;
- **voices**: the median F0 of each catalogue id's greeting, female ids above 165 Hz, male ids below 155 Hz;
- voice-to-voice latency (end of the caller's speech -> first ``reply.audio``) of spoken replies, and the
  server's resident memory.

Accuracy figures hold under load; latency figures do not: the load average is printed with them.

    PYTHONPATH=src .venv/bin/python bench/llm_quality.py [--only requests|voices]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server_stacks import stack_server
from bench.spoken_lines import WIRE_RATE, synthesise

from voxgate.protocol.voices import BASELINE_VOICES, FEMALE_VOICES
from voxgate.speech.voice_variants import median_pitch_hz

CHUNK_SECONDS = 0.05
CHUNK_SAMPLES = int(WIRE_RATE * CHUNK_SECONDS)
REPLY_TIMEOUT_SECONDS = 40.0

PERSONA = (
    "You are Ava, the friendly phone assistant of Luigi's Pizzeria in London. You speak on the phone, "
    "so answer in one or two short spoken sentences, without lists or formatting. Use the tools when "
    "the caller asks for the weather, an order's status, a table booking, opening hours or a human."
)
SUPPORT = "You are a friendly support agent. Answer in one or two short sentences."


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


PIZZERIA_TOOLS = [
    _tool(
        "get_weather",
        "Get the weather forecast for a city.",
        {"city": {"type": "string"}, "day": {"type": "string"}},
        ["city"],
    ),
    _tool(
        "check_order_status",
        "Look up the delivery status of an order by its order number.",
        {"order_id": {"type": "string"}},
        ["order_id"],
    ),
    _tool(
        "book_table",
        "Book a table at the restaurant.",
        {
            "people": {"type": "integer", "description": "number of guests"},
            "time": {"type": "string", "description": "time of the booking, e.g. 19:00"},
        },
        ["people", "time"],
    ),
    _tool(
        "get_opening_hours",
        "Get the restaurant's opening hours for a day of the week.",
        {"day": {"type": "string"}},
        ["day"],
    ),
    _tool(
        "transfer_to_human",
        "Transfer the caller to a human member of staff.",
        {"reason": {"type": "string"}},
        [],
    ),
]
README_TOOLS = [
    _tool("lookup_order", "Look up an order by id", {"order_id": {"type": "string"}}, ["order_id"])
]
AGENTS = {"pizzeria": (PERSONA, PIZZERIA_TOOLS), "readme": (SUPPORT, README_TOOLS)}

LEAKED_SYNTAX = re.compile(r"[{}<>`*#|\[\]]|tool_call|\"\w+\"\s*:|\b\w+\(\w*=", re.IGNORECASE)


def _alnum(value: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


def has(key: str, pattern: str) -> Callable[[dict[str, Any]], bool]:
    return lambda arguments: bool(re.search(pattern, str(arguments.get(key, "")), re.IGNORECASE))


def id_is(key: str, expected: str) -> Callable[[dict[str, Any]], bool]:
    return lambda arguments: _alnum(arguments.get(key, "")) == expected


def people(count: int) -> Callable[[dict[str, Any]], bool]:
    words = {2: "two", 4: "four"}
    return lambda arguments: str(arguments.get("people")).lower() in (str(count), words.get(count))


def anything(_arguments: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Case:
    agent: str
    said: str | None
    """The caller's line (spoken); ``None`` for an instruction case."""
    tool: str | None = None
    check: Callable[[dict[str, Any]], bool] = anything
    instructions: str | None = None
    """A ``reply.create`` instruction (after ``session.ready``, nothing said)."""
    expect_text: str | None = None
    """A regular expression the agent's words must match (instruction cases, persona checks)."""


CASES = [
    Case("pizzeria", "What's the weather in London tomorrow?", "get_weather", has("city", "london")),
    Case("pizzeria", "Will it rain in Manchester today?", "get_weather", has("city", "manchester")),
    Case("pizzeria", "What's the weather like in Paris right now?", "get_weather", has("city", "paris")),
    Case(
        "pizzeria",
        "Where is my order? The number is A B one two three four five.",
        "check_order_status",
        id_is("order_id", "ab12345"),
    ),
    Case(
        "pizzeria",
        "Can you check on order nine eight seven six five for me?",
        "check_order_status",
        id_is("order_id", "98765"),
    ),
    Case("pizzeria", "I'd like a table for two at seven pm, please.", "book_table", people(2)),
    Case("pizzeria", "Book a table for four people at eight tonight.", "book_table", people(4)),
    Case("pizzeria", "Are you open on Sunday?", "get_opening_hours", has("day", "sun")),
    Case("pizzeria", "What time do you open on Saturday?", "get_opening_hours", has("day", "sat")),
    Case("pizzeria", "Transfer me to a human agent, please.", "transfer_to_human"),
    Case("pizzeria", "I want to speak to a real person.", "transfer_to_human"),
    Case("pizzeria", "Hi there, how are you today?"),
    Case("pizzeria", "What's your name?", expect_text=r"\bava\b"),
    Case("pizzeria", "Do you have vegetarian pizzas?"),
    Case("pizzeria", "Is the margherita any good?"),
    Case("pizzeria", "Can I pay by card?"),
    Case("pizzeria", "Thanks, that's all. Goodbye!"),
    Case(
        "readme",
        "Hi, where is my order? The order number is A B one two three four five.",
        "lookup_order",
        id_is("order_id", "ab12345"),
    ),
    Case(
        "readme",
        "Can you look up order X Y nine eight seven for me?",
        "lookup_order",
        id_is("order_id", "xy987"),
    ),
    Case("readme", "Hello, good morning!"),
    Case("readme", "What can you help me with?"),
    Case(
        "pizzeria",
        None,
        instructions="Say exactly: Your table is booked.",
        expect_text=r"^Your table is booked\.$",
    ),
    Case(
        "pizzeria",
        None,
        "get_weather",
        has("city", "rome"),
        instructions="The user asked: what's the weather in Rome? Call the get_weather tool now.",
    ),
    Case(
        "pizzeria",
        None,
        instructions="Tell the caller, in one short sentence, that the kitchen closes at ten tonight.",
        expect_text=r"\b(ten|10)\b",
    ),
    Case(
        "readme",
        None,
        instructions="Say exactly: Thank you for calling support.",
        expect_text=r"^Thank you for calling support\.$",
    ),
]


@dataclass
class Outcome:
    case: Case
    heard: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    agent_texts: list[str] = field(default_factory=list)
    voice_to_voice: float | None = None
    error: str | None = None

    @property
    def call_ok(self) -> bool:
        if self.case.tool is None:
            return not self.calls
        return (
            len(self.calls) == 1
            and self.calls[0].get("name") == self.case.tool
            and self.case.check(self.calls[0].get("arguments") or {})
        )

    @property
    def text_ok(self) -> bool:
        if self.case.expect_text is None:
            return True
        return bool(re.search(self.case.expect_text, " ".join(self.agent_texts).strip(), re.IGNORECASE))

    @property
    def leaked(self) -> list[str]:
        return [text for text in self.agent_texts if LEAKED_SYNTAX.search(text)]


class Session:
    """One ``/v1/ws`` session: configure, talk or instruct, collect the events."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.receiver = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                self.events.append((time.monotonic(), json.loads(message)))
                self.changed.set()
        self.changed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event.get("type") == kind]

    async def wait_for(self, predicate: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.receiver.done():
                return predicate()
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def stream(self, pcm: np.ndarray, until: Callable[[], bool], within: float) -> float:
        """Send ``pcm`` at real-time pace, then silence until ``until()``; returns when the speech ended."""
        padded = np.concatenate([pcm, np.zeros(-pcm.size % CHUNK_SAMPLES, np.int16)])
        silence = base64.b64encode(np.zeros(CHUNK_SAMPLES, "<i2").tobytes()).decode()
        start = time.monotonic()
        frames = padded.size // CHUNK_SAMPLES
        speech_end = start + pcm.size / WIRE_RATE
        index = 0
        while time.monotonic() - start < frames * CHUNK_SECONDS + within and not until():
            if index < frames:
                chunk = padded[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES].astype("<i2")
                data = base64.b64encode(chunk.tobytes()).decode()
            else:
                data = silence
            await self.send({"type": "input.audio", "audio": data})
            index += 1
            await asyncio.sleep(max(0.0, start + index * CHUNK_SECONDS - time.monotonic()))
        return speech_end

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "session.end"})
            await self.wait_for(lambda: bool(self.of("session.ended")), 5)
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.receiver


async def open_session(url: str, api_key: str, config: dict[str, Any]) -> Session:
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {api_key}"}, max_size=None)
    session = Session(ws)
    await session.send({"type": "session.update", "session": config})
    if not await session.wait_for(lambda: bool(session.of("session.ready")), 60):
        raise RuntimeError(f"no session.ready: {session.events[-3:]}")
    return session


async def run_case(url: str, api_key: str, case: Case, audio: dict[str, np.ndarray]) -> Outcome:
    prompt, tools = AGENTS[case.agent]
    outcome = Outcome(case)
    session = await open_session(url, api_key, {"system_prompt": prompt, "tools": tools})
    try:

        def answered() -> bool:
            return bool(session.of("reply.done")) or bool(session.of("tool.call"))

        if case.instructions is not None:
            await session.send({"type": "reply.create", "instructions": case.instructions})
            await session.stream(np.zeros(0, np.int16), answered, REPLY_TIMEOUT_SECONDS)
        else:
            assert case.said is not None
            speech_end = await session.stream(audio[case.said], answered, REPLY_TIMEOUT_SECONDS)
            first_audio = next((t for t, e in session.events if e.get("type") == "reply.audio"), None)
            if first_audio is not None and not session.of("tool.call"):
                outcome.voice_to_voice = first_audio - speech_end
        await session.wait_for(lambda: bool(session.of("reply.done")), 10)
        outcome.heard = " + ".join(str(e.get("text", "")) for e in session.of("transcript.user"))
        calls = session.of("tool.call")
        outcome.calls = [{"name": e.get("name"), "arguments": e.get("arguments")} for e in calls]
        outcome.agent_texts = [str(e.get("text", "")) for e in session.of("transcript.agent")]
        if not answered():
            outcome.error = "no answer"
    finally:
        await session.close()
    return outcome


async def voice_pitch(url: str, api_key: str, voice: str) -> float:
    greeting = "Hello, thanks for calling. How can I help you today?"
    session = await open_session(url, api_key, {"output": {"voice": voice}, "greeting": greeting})
    try:
        await session.wait_for(lambda: bool(session.of("reply.done")), 30)
        pcm = b"".join(base64.b64decode(e["data"]) for e in session.of("reply.audio"))
        return median_pitch_hz(np.frombuffer(pcm, "<i2").astype(np.int16), WIRE_RATE)
    finally:
        await session.close()


def resident_mb(pid: int) -> tuple[float, float]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def print_tables(outcomes: list[Outcome], pitches: dict[str, float], memory: tuple[float, float]) -> None:
    load = os.getloadavg()
    print(f"## End-to-end agent quality (embedded stack; load average {load[0]:.1f} / {load[1]:.1f})\n")
    if outcomes:
        print("| request | heard | expected | got | ok | agent said |")
        print("|---|---|---|---|---|---|")
        for o in outcomes:
            request = o.case.said or f"reply.create: {o.case.instructions}"
            got = ", ".join(f"{c['name']}({json.dumps(c['arguments'])})" for c in o.calls) or "words"
            ok = "yes" if o.call_ok and o.text_ok and not o.leaked and not o.error else "NO"
            said = " / ".join(o.agent_texts).replace("|", "/")[:90]
            print(f"| {request} | {o.heard} | {o.case.tool or 'no tool'} | {got} | {ok} | {said} |")
        spoken = [o for o in outcomes if o.case.said is not None]
        need = [o for o in spoken if o.case.tool is not None]
        none = [o for o in spoken if o.case.tool is None]
        instructed = [o for o in outcomes if o.case.instructions is not None]
        leaks = [text for o in outcomes for text in o.leaked]
        latencies = [o.voice_to_voice for o in spoken if o.voice_to_voice is not None]
        print("\n| metric | value |\n|---|---|")
        right = sum(o.call_ok for o in need)
        print(f"| spoken request -> right `tool.call` and arguments | {right}/{len(need)} |")
        print(
            f"| spoken request -> no call where none is needed | {sum(o.call_ok for o in none)}/{len(none)} |"
        )
        print(f"| persona check (name said) | {sum(o.text_ok for o in spoken)}/{len(spoken)} |")
        followed = sum(o.call_ok and o.text_ok for o in instructed)
        print(f"| `reply.create` instructions followed | {followed}/{len(instructed)} |")
        shown = f"{len(leaks)} {leaks[:3]}" if leaks else "0"
        print(f"| `transcript.agent` with leaked syntax (JSON, tags, Markdown, code) | {shown} |")
        if latencies:
            print(
                f"| voice-to-voice, spoken replies, p50 / p90 (load average {load[0]:.1f}) | "
                f"{statistics.median(latencies):.2f} / {pct(latencies, 0.9):.2f} s |"
            )
        print(f"| server resident memory now / peak | {memory[0]:.0f} / {memory[1]:.0f} MB |")
    if pitches:
        print("\n| voice id | gender | median F0 of its greeting | ok |\n|---|---|---|---|")
        for voice, pitch in pitches.items():
            female = voice in FEMALE_VOICES
            ok = (165 <= pitch <= 260) if female else (80 <= pitch <= 155)
            print(
                f"| {voice} | {'female' if female else 'male'} | {pitch:.0f} Hz | {'yes' if ok else 'NO'} |"
            )


async def main(args: argparse.Namespace) -> None:
    cases = [] if args.only == "voices" else CASES
    lines = sorted({c.said for c in cases if c.said})
    print(f"synthesising {len(lines)} caller lines ...", file=sys.stderr)
    audio = {line.text: line.pcm for line in synthesise(lines, "piper")}
    with tempfile.TemporaryDirectory() as tmp:
        print("starting the embedded server ...", file=sys.stderr)
        server = stack_server("embedded", Path(tmp)).start()
        try:
            url, key = server.ws_url, server.api_key
            if lines:  # the first inference of each model pays one-off costs: not measured
                await run_case(url, key, Case("pizzeria", lines[0]), audio)
            outcomes = []
            for case in cases:
                outcome = await run_case(url, key, case, audio)
                verdict = "ok" if outcome.call_ok and outcome.text_ok else "NO"
                print(f"{verdict} {case.said or case.instructions}", file=sys.stderr)
                outcomes.append(outcome)
            pitches = {}
            if args.only in (None, "voices"):
                for voice in BASELINE_VOICES:
                    pitches[voice] = await voice_pitch(url, key, voice)
            assert server.process is not None
            memory = resident_mb(server.process.pid)
        finally:
            server.stop()
    print_tables(outcomes, pitches, memory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["requests", "voices"], default=None)
    asyncio.run(main(parser.parse_args()))
