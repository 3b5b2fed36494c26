"""Tool calls that a model writes as text: ``<tool_call>{"name": …, "arguments": …}</tool_call>`` (the Qwen
chat template's convention), or bare JSON objects (what ``llama_cpp.server`` returns in ``content``).

:class:`ToolCallStreamParser` sits on a streamed reply: ordinary text passes through at once, while output
that starts like a tool call is held back and parsed when the reply ends, so JSON is never spoken.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from voxgate.speech.base import ChatMessage, LLMEvent, TextDelta, ToolCallRequest, ToolSchema

logger = logging.getLogger(__name__)

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```\s*$")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def coerce_arguments(raw: Any) -> dict[str, Any] | None:
    """Tool arguments as a dict: a dict as is, a JSON object string decoded, nothing/empty -> ``{}``."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _call_from_object(obj: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI's nested shape
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    raw_arguments: Any = None
    for key in _ARGUMENT_KEYS:
        if key in obj:
            raw_arguments = obj[key]
            break
    arguments = coerce_arguments(raw_arguments)
    if arguments is None:
        return None
    return name, arguments


def _json_values(text: str) -> list[Any] | None:
    """Every JSON value in ``text`` (whitespace/comma separated); ``None`` if anything else is there."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text):
            return values
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError:
            return None
        values.append(value)


def parse_tool_calls(text: str, tool_names: Collection[str] = ()) -> list[ToolCallRequest] | None:
    """Parse ``text`` that consists only of tool calls. ``None`` when it is not that.

    Accepts ``<tool_call>`` blocks (closing tag optional at the very end), bare JSON objects, a JSON
    list of objects, and any of these inside a Markdown code fence. Calls to a name that is not in
    ``tool_names`` (when given) are dropped with a warning.
    """
    body = _FENCE.sub("", text.strip())
    if TOOL_CALL_OPEN in body:
        chunks = [chunk.split(TOOL_CALL_CLOSE, 1) for chunk in body.split(TOOL_CALL_OPEN)]
        if chunks[0][0].strip():  # text before the first tag: not a pure tool-call reply
            return None
        pieces = []
        for parts in chunks[1:]:
            if len(parts) == 2 and parts[1].strip():
                return None
            pieces.append(parts[0])
        body = ",".join(pieces)
    values = _json_values(body)
    if not values:
        return None
    objects: list[Any] = []
    for value in values:
        objects.extend(value if isinstance(value, list) else [value])
    calls: list[ToolCallRequest] = []
    for obj in objects:
        parsed = _call_from_object(obj)
        if parsed is None:
            return None
        name, arguments = parsed
        if tool_names and name not in tool_names:
            logger.warning("model called unknown tool %r; dropped", name)
            continue
        calls.append(ToolCallRequest(call_id=new_call_id(), name=name, arguments=arguments))
    return calls


class ToolCallStreamParser:
    """Split a streamed reply into spoken text and tool calls.

    ``feed(delta)`` returns the events that are safe to emit now; ``finish()`` the rest. Text is
    passed through as soon as it cannot be the start of a tool call; a reply that starts with ``{``
    or ``<tool_call>`` (or reaches a ``<tool_call>`` tag later) is buffered and parsed at the end.
    """

    def __init__(self, tool_names: Collection[str] = ()) -> None:
        self._tool_names = tuple(tool_names)
        self._mode: str = "undecided"
        self._pending = ""  # text not yet emitted (undecided prefix, held-back tag prefix, or tool JSON)
        self._text_emitted = False

    @property
    def in_tool_call(self) -> bool:
        return self._mode == "tool"

    def feed(self, delta: str) -> list[LLMEvent]:
        if not delta:
            return []
        self._pending += delta
        if self._mode == "undecided":
            head = self._pending.lstrip()
            if not head:
                return []
            if head.startswith(("{", "[", "```", TOOL_CALL_OPEN)):
                self._mode = "tool"
                return []
            if TOOL_CALL_OPEN.startswith(head) or "```".startswith(head):
                return []  # could still become a tag or a fence
            self._mode = "text"
        if self._mode == "text":
            return self._emit_text()
        return []

    def _emit_text(self) -> list[LLMEvent]:
        tag_at = self._pending.find(TOOL_CALL_OPEN)
        if tag_at >= 0:
            text, self._pending = self._pending[:tag_at], self._pending[tag_at:]
            self._mode = "tool"
            return self._text_event(text)
        hold = _partial_tag_suffix(self._pending)
        cut = len(self._pending) - hold
        text, self._pending = self._pending[:cut], self._pending[cut:]
        return self._text_event(text)

    def _text_event(self, text: str) -> list[LLMEvent]:
        if not text:
            return []
        self._text_emitted = True
        return [TextDelta(text)]

    def finish(self) -> list[LLMEvent]:
        pending, self._pending = self._pending, ""
        if self._mode == "tool":
            calls = parse_tool_calls(pending, self._tool_names)
            if calls is not None:
                return list(calls)
            body = _FENCE.sub("", pending.strip())
            if body.startswith(("{", "[", TOOL_CALL_OPEN)):
                logger.warning("model wrote an unparseable tool call; not spoken: %.200r", pending)
                return []
            return self._text_event(body)  # a fenced reply that was not JSON: speak its text
        return self._text_event(pending if self._text_emitted else pending.strip())


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``<tool_call>``."""
    for length in range(min(len(TOOL_CALL_OPEN) - 1, len(text)), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-length:]):
            return length
    return 0


# --- grounding: does a call's argument come from the conversation? -------------------------------
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_STOPWORDS = frozenset("a an and at for i in is it me my of on or please the to with you your".split())
_WORD = re.compile(r"[a-z]+|\d+")


def _grounding_words(text: str) -> set[str]:
    """Lowercased words and digit runs, number words as digits ("four" -> "4", "AB12345" -> ab, 12345),
    and spelled-out sequences joined ("a b one two three" -> "ab123", "123")."""
    lowered = text.lower()
    tokens = [_NUMBER_WORDS.get(word, word) for word in _WORD.findall(lowered)]
    words = set(tokens) | set(re.findall(r"[a-z0-9]+", lowered))
    run: list[str] = []
    for token in [*tokens, "<end>"]:
        if len(token) == 1 or token.isdigit():
            run.append(token)
            continue
        if len(run) > 1:
            words.add("".join(run))
            words.add("".join(part for part in run if part.isdigit()))
        run = []
    return words - _STOPWORDS - {""}


def caller_context(messages: Sequence[ChatMessage]) -> set[str]:
    """Words the caller said (user turns), that tools returned, or that an instruction gave (a system
    message after the system prompt: ``reply.create`` instructions, ``response_instructions``, items the
    client added): what a tool argument may come from. The system prompt itself is not: its examples are
    not the caller's data."""
    texts = [
        message.content
        for index, message in enumerate(messages)
        if message.role in ("user", "tool") or (message.role == "system" and index > 0)
    ]
    return _grounding_words(" ".join(texts))


def is_grounded(call: ToolCallRequest, schema: ToolSchema, context: set[str]) -> bool:
    """Whether at least one required free-text/number argument of ``call`` shares a word with ``context``.

    A guard for small models, which sometimes call a tool for small talk with invented arguments
    (``check_order_status(order_id="12345")`` after "do you have vegetarian pizzas?"). Calls without
    required free-form arguments (none, enums only, booleans) are always accepted.
    """
    properties = schema.parameters.get("properties") or {}
    checkable = [
        name
        for name in schema.parameters.get("required") or ()
        if name in call.arguments
        and isinstance(properties.get(name, {}), dict)
        and "enum" not in properties.get(name, {})
        and properties.get(name, {}).get("type", "string") in ("string", "integer", "number")
    ]
    if not checkable:
        return True
    return any(_grounding_words(str(call.arguments[name])) & context for name in checkable)
