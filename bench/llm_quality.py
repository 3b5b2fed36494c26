"""Embedded LLM quality and latency: tool choice and arguments, persona adherence, TTFT, first sentence.

Runs the packaged Qwen2.5-0.5B through ``LlamaLLM`` (the same code the server uses) on a fixed set of
caller requests with five realistic tools, and prints Markdown tables. One run takes about a minute on
2 cores; do not loop it.

    .venv/bin/python bench/llm_quality.py [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxgate.config import Settings
from voxgate.speech.base import ChatMessage, TextDelta, ToolCallRequest, ToolSchema
from voxgate.speech.llm_llama import LlamaLLM
from voxgate.speech.sentences import SentenceSplitter

PERSONA = (
    "You are Ava, the friendly phone assistant of Luigi's Pizzeria in London. You speak on the phone, "
    "so answer in one or two short spoken sentences, without lists or formatting. Use the tools when "
    "the caller asks for the weather, an order's status, a table booking, opening hours or a human."
)

TOOLS = [
    ToolSchema(
        "get_weather",
        "Get the weather forecast for a city.",
        {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "day": {"type": "string", "examples": ["today", "tomorrow"]},
            },
            "required": ["city"],
        },
    ),
    ToolSchema(
        "check_order_status",
        "Look up the delivery status of an order by its order number.",
        {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    ),
    ToolSchema(
        "book_table",
        "Book a table at the restaurant.",
        {
            "type": "object",
            "properties": {
                "people": {"type": "integer", "description": "number of guests"},
                "time": {"type": "string", "description": "time of the booking, e.g. 19:00"},
            },
            "required": ["people", "time"],
        },
    ),
    ToolSchema(
        "get_opening_hours",
        "Get the restaurant's opening hours for a day of the week.",
        {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
    ),
    ToolSchema(
        "transfer_to_human",
        "Transfer the caller to a human member of staff.",
        {"type": "object", "properties": {"reason": {"type": "string"}}},
    ),
]


def _has(key: str, pattern: str) -> Callable[[dict[str, Any]], bool]:
    return lambda arguments: bool(re.search(pattern, str(arguments.get(key, "")), re.IGNORECASE))


def _no_check(arguments: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Case:
    request: str
    tool: str | None
    check: Callable[[dict[str, Any]], bool] = _no_check
    must_say: str | None = None


CASES = [
    Case("What's the weather in London tomorrow?", "get_weather", _has("city", "london")),
    Case("Will it rain in Manchester today?", "get_weather", _has("city", "manchester")),
    Case(
        "Where is my order? The number is AB12345.", "check_order_status", _has("order_id", r"ab\s*-?12345")
    ),
    Case("Can you check on order 98765 for me?", "check_order_status", _has("order_id", "98765")),
    Case(
        "I'd like a table for 2 at 7 pm, please.",
        "book_table",
        lambda a: str(a.get("people")) in ("2", "two"),
    ),
    Case(
        "Book a table for four people at 8 tonight.",
        "book_table",
        lambda a: str(a.get("people")) in ("4", "four"),
    ),
    Case("Are you open on Sunday?", "get_opening_hours", _has("day", "sun")),
    Case("Transfer me to a human agent, please.", "transfer_to_human"),
    Case("I want to speak to a real person.", "transfer_to_human"),
    Case("Hi there, how are you today?", None),
    Case("What's your name?", None, must_say="Ava"),
    Case("Do you have vegetarian pizzas?", None),
    Case("Is the margherita any good?", None),
    Case("Thanks, that's all. Goodbye!", None),
]


@dataclass
class Run:
    case: Case
    ttft: float
    first_sentence: float | None
    total: float
    text: str
    calls: list[ToolCallRequest] = field(default_factory=list)
    completion_tokens: int = 0
    decode_seconds: float = 0.0
    model_ttft: float = 0.0
    """Model's first token (from GenerationStats), whether or not that token is spoken."""
    generations: int = 1

    @property
    def tool_ok(self) -> bool:
        if self.case.tool is None:
            return not self.calls
        return (
            len(self.calls) == 1
            and self.calls[0].name == self.case.tool
            and self.case.check(self.calls[0].arguments)
        )

    @property
    def persona_ok(self) -> bool | None:
        if self.case.tool is not None:
            return None
        words = self.text.split()
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", self.text.strip()) if s]
        clean = not re.search(r"[{}*#`]|as an ai|language model|Qwen|Alibaba", self.text, re.IGNORECASE)
        said = self.case.must_say is None or self.case.must_say.lower() in self.text.lower()
        return bool(words) and len(words) <= 45 and len(sentences) <= 3 and clean and said


async def run_case(llm: LlamaLLM, case: Case, session_key: str) -> Run:
    splitter = SentenceSplitter()
    generations_before = len(llm.recent_stats)
    started = time.perf_counter()
    ttft: float | None = None
    first_sentence: float | None = None
    text: list[str] = []
    calls: list[ToolCallRequest] = []
    async for event in llm.stream(
        [ChatMessage("system", PERSONA), ChatMessage("user", case.request)], TOOLS, session_key=session_key
    ):
        now = time.perf_counter() - started
        ttft = now if ttft is None else ttft
        if isinstance(event, TextDelta):
            text.append(event.text)
            if first_sentence is None and splitter.feed(event.text):
                first_sentence = now
        else:
            calls.append(event)
    total = time.perf_counter() - started
    if first_sentence is None and text and splitter.flush():
        first_sentence = total
    generations = list(llm.recent_stats)[generations_before:]
    stats = generations[0]  # the first generation; a rejected tool call adds a second one
    return Run(
        case, ttft or total, first_sentence, total, "".join(text).strip(), calls,
        stats.completion_tokens, stats.total_seconds - stats.prefill_seconds, stats.prefill_seconds,
        len(generations),
    )  # fmt: skip


def rss_mb() -> tuple[float, float]:
    current = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(repeat: int) -> None:
    settings = Settings()
    started = time.perf_counter()
    llm = LlamaLLM(settings, max_tokens=80)
    load = time.perf_counter() - started

    cold = await run_case(llm, Case("What's your name?", None), "bench")  # prefill of system prompt + tools
    runs = [await run_case(llm, case, "bench") for _ in range(repeat) for case in CASES]

    # session switching: another session evicts the prefix; switching back restores the saved KV cells
    other = ChatMessage("system", "You are Bob, a terse assistant for a bike shop in Leeds. " * 8)
    async for _ in llm.stream([other, ChatMessage("user", "Hi.")], (), session_key="other"):
        pass
    restored = await run_case(llm, Case("Hi again.", None), "bench")
    async for _ in llm.stream([other, ChatMessage("user", "Hi.")], (), session_key="other"):
        pass
    llm.forget_session("bench")  # the same switch without saved state (one shared KV cache)
    not_restored = await run_case(llm, Case("Hi again.", None), "bench")
    current_rss, peak_rss = rss_mb()

    print(f"## Embedded LLM quality ({llm.model_path.name}, n_threads={settings.llm_threads}, "
          f"{len(CASES)} requests x {repeat})\n")  # fmt: skip
    print("| request | expected | got | tool ok | persona ok | first event s | first chunk s | reply |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs[: len(CASES)]:
        got = ", ".join(f"{c.name}({c.arguments})" for c in run.calls) or "text"
        persona = "-" if run.persona_ok is None else ("yes" if run.persona_ok else "NO")
        sentence = f"{run.first_sentence:.2f}" if run.first_sentence is not None else "-"
        reply = run.text.replace("|", "/")[:80]
        cells = [run.case.request, run.case.tool or "no tool", got, "yes" if run.tool_ok else "NO", persona]
        cells += [f"{run.ttft:.2f}", sentence, reply]
        print("| " + " | ".join(cells) + " |")

    tool_runs = [r for r in runs if r.case.tool is not None]
    talk_runs = [r for r in runs if r.case.tool is None]
    warm = [r.model_ttft for r in runs]
    spoken = [r.ttft for r in talk_runs]
    sentences = [r.first_sentence for r in talk_runs if r.first_sentence is not None]
    rates = [
        r.completion_tokens / r.decode_seconds
        for r in runs
        if r.decode_seconds > 0 and r.completion_tokens > 4
    ]
    print("\n| metric | value |\n|---|---|")
    tools_right = sum(r.tool_ok for r in tool_runs)
    print(f"| tool choice + arguments correct (tool expected) | {tools_right}/{len(tool_runs)} |")
    print(f"| no tool call where none expected | {sum(r.tool_ok for r in talk_runs)}/{len(talk_runs)} |")
    in_persona = sum(bool(r.persona_ok) for r in talk_runs)
    print(f"| persona adherence (short, spoken, in character) | {in_persona}/{len(talk_runs)} |")
    print(f"| model load | {load:.2f} s |")
    print(f"| cold TTFT (first turn: system prompt + 5 tools prefill) | {cold.model_ttft:.2f} s |")
    warm_p = f"{pct(warm, 0.5):.2f} / {pct(warm, 0.9):.2f} / {max(warm):.2f}"
    print(f"| warm TTFT, model first token p50 / p90 / max | {warm_p} s |")
    spoken_p = f"{pct(spoken, 0.5):.2f} / {pct(spoken, 0.9):.2f}"
    print(f"| first spoken text delta (text replies) p50 / p90 | {spoken_p} s |")
    sentence_p = f"{pct(sentences, 0.5):.2f} / {pct(sentences, 0.9):.2f}"
    print(f"| time to first chunk from SentenceSplitter (text replies) p50 / p90 | {sentence_p} s |")
    print(f"| tool call complete (whole JSON) p50 / p90 | {pct([r.total for r in tool_runs], .5):.2f} / "
          f"{pct([r.total for r in tool_runs], .9):.2f} s |")  # fmt: skip
    print(f"| decode speed p50 | {statistics.median(rates):.1f} tok/s |")
    redone = sum(r.generations > 1 for r in runs)
    print(f"| replies regenerated after a rejected tool call | {redone}/{len(runs)} |")
    print(f"| TTFT after another session used the model: KV restored / not restored | "
          f"{restored.model_ttft:.2f} / {not_restored.model_ttft:.2f} s |")  # fmt: skip
    print(f"| RSS now / peak | {current_rss:.0f} / {peak_rss:.0f} MB |")
    llm.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the request set (default 1)")
    asyncio.run(main(parser.parse_args().repeat))
