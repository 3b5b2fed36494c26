"""Reading a REST request's JSON body: empty, malformed, too deeply nested or unstorable bodies become the
documented errors (400 / 422) before any model sees them. The size cap is enforced earlier, by
``BodySizeLimitMiddleware``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from voxgate.api.rest_errors import malformed_json, validation_failed
from voxgate.protocol.frame_limits import nesting_refusal


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_object(request: Request) -> Any:
    """The parsed body (the size cap is enforced by BodySizeLimitMiddleware before this runs)."""
    raw = await request.body()
    if not raw.strip():
        raise malformed_json("the request body is empty")
    if (refusal := nesting_refusal(raw)) is not None:
        raise malformed_json(refusal)
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise malformed_json("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise malformed_json(str(exc)) from None
    problem = _find_unstorable_string(data, ("body",))
    if problem is not None:
        raise validation_failed(
            [(problem, "string contains a NUL character or invalid unicode", "string_type")]
        )
    return data


def _find_unstorable_string(value: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Location of the first string (or object key) that contains NUL or a lone surrogate."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _storable(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if not _storable(key):
                    return where
                stack.append((child, (*where, key)))
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))
    return None


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
