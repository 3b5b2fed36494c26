"""Instructions the embedded provider carries out itself instead of hoping the small model does.

- One that dictates the reply word for word ("Say exactly: Your table is booked.") is spoken as given: a
  0.5B model paraphrases, refuses or adds to such text (:func:`verbatim_reply`).
- One that tells the agent to call a named tool ("Call the get_weather tool now.") makes that tool the
  reply's action; its arguments are still the model's, under the tool's schema (:func:`instructed_tool`).

Only the trailing instruction of a reply counts (``reply.create``'s ``instructions`` or a tool's
``response_instructions``, both trailing system messages: see ``Ledger.to_messages``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voxgate.speech.base import ChatMessage, ToolSchema

_SAY_EXACTLY = re.compile(
    r"^\s*(?:say|repeat|reply with|respond with|answer with|tell the (?:user|caller))"
    r"[ \t]+(?:exactly|verbatim|word for word|only)[ \t]*[:,\-–—]?\s*(?P<text>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CALL_VERB = re.compile(r"\b(?:call|use|run|invoke|trigger)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:do not|don't|never|no need to|without)\b", re.IGNORECASE)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}


def dictated_text(instruction: str) -> str | None:
    """The text an instruction dictates (``Say exactly: "Hi."`` -> ``Hi.``), or ``None``."""
    match = _SAY_EXACTLY.match(instruction)
    if match is None:
        return None
    text = match.group("text").strip()
    closing = _QUOTES.get(text[:1])
    if closing is not None and len(text) > 1 and text.endswith(closing):
        text = text[1:-1].strip()
    return text if any(char.isalnum() for char in text) else None


def verbatim_reply(messages: Sequence[ChatMessage]) -> str | None:
    """What to say word for word, when the last message is an instruction that dictates it."""
    if not messages or messages[-1].role != "system":
        return None
    return dictated_text(messages[-1].content)


def instructed_tool(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> str | None:
    """The tool the trailing instruction tells the agent to call (exactly one tool named, with a verb
    like "call" or "use", and no negation), or ``None``."""
    if not messages or messages[-1].role != "system" or not tools:
        return None
    instruction = messages[-1].content
    if not _CALL_VERB.search(instruction) or _NEGATION.search(instruction):
        return None
    named = [
        tool.name for tool in tools if re.search(rf"(?<![\w-]){re.escape(tool.name)}(?![\w-])", instruction)
    ]
    return named[0] if len(named) == 1 else None
