"""Limits a JSON text is checked against before it is parsed (``/v1/ws`` frames, Twilio media-stream
frames, REST bodies).

Python's JSON parser recurses once per nesting level: a frame of a couple of KiB nested ~1000 deep raises
``RecursionError`` inside the parser, and shallower ones can still exhaust the stack in code that walks the
result. :func:`nesting_refusal` measures the depth without recursion (a C-level regex skips every string,
so brackets inside strings do not count), and skips even that when the text has too few brackets to be
too deep, so ordinary frames (an audio chunk has one ``{``) cost a single ``count``.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 32
"""Deepest nesting of objects and arrays accepted; a session.update with a tool whose parameter schema
nests objects ten deep is about 16 levels."""

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str, stop_above: int | None = None) -> int:
    """The deepest nesting of ``[``/``{`` in ``text``, outside strings (malformed JSON is measured too);
    the scan stops once the depth exceeds ``stop_above``."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        elif bracket in ("]", "}"):
            depth = max(0, depth - 1)
    return deepest


def nesting_refusal(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` may not be parsed (nested deeper than ``max_depth``), or None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= max_depth:
        return None
    if nesting_depth(text, stop_above=max_depth) > max_depth:
        return f"JSON nested deeper than {max_depth} levels"
    return None
