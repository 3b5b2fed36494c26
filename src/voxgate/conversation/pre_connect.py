"""Pre-connect requests (HOSTED.md §2): before a stored agent's session becomes ready, call up to two HTTP
endpoints (e.g. look the caller up in a CRM) and fill ``{{name}}`` placeholders of the system prompt and
greeting with values taken from their JSON answers.

- Each request sends the session facts its ``sends`` names (``agent_id``, ``session_id``,
  ``caller_number``, ``called_number``, ``channel``): as query parameters for GET/DELETE, as a JSON
  object otherwise, with the agent's stored headers; the outbound-URL policy of HTTP tools applies.
- It has ``timeout_ms`` (at most and by default 800 ms); the requests run at the same time, so a session
  waits at most 800 ms for all of them.
- ``returns[].path`` is a dotted path into the answer (``customer.name``, ``items[0].id``, a leading ``$.``
  allowed); the value fills ``{{name}}``. A request that fails, times out or answers without the path
  leaves ``default`` there (empty when none): pre-connect never blocks or fails a session.
- ``allow_overrides`` is stored and returned; it changes nothing yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from voxgate.conversation.http_tools import HttpToolRunner
from voxgate.protocol.config import PreConnectRequest, SessionConfig

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 800
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``a.b[0].c``, optional leading ``$.``) of a JSON document, or None."""
    value = document
    for name, index in _PATH_PART.findall(path.removeprefix("$").lstrip(".")):
        if name and isinstance(value, Mapping):
            value = value.get(name)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def fill_placeholders(text: str | None, values: Mapping[str, str]) -> str | None:
    """``{{name}}`` replaced by ``values[name]``; other placeholders are left as they are."""
    if not text:
        return text
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def returned_values(request: PreConnectRequest, answer: Any) -> dict[str, str]:
    """The values a request's ``returns`` take from its answer (None: it failed), defaults otherwise."""
    values: dict[str, str] = {}
    for wanted in request.returns:
        found = value_at(answer, wanted.path) if answer is not None else None
        values[wanted.name] = as_text(found if found is not None else wanted.default)
    return values


async def call_pre_connect(
    runner: HttpToolRunner | None, request: PreConnectRequest, facts: Mapping[str, str]
) -> dict[str, str]:
    """Make one request; its returned values (defaults on any failure)."""
    if runner is None:
        return returned_values(request, None)
    timeout = (request.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
    sent = {name: facts[name] for name in request.sends if name in facts}
    headers = {h.name: h.value for h in request.http.headers if h.value is not None and not h.remove}
    try:
        outcome = await runner.run(request.http, sent, headers=headers, timeout_seconds=timeout)
    except Exception:  # never blocks the session
        logger.exception("pre-connect request to %s failed", request.http.url)
        return returned_values(request, None)
    if outcome.is_error:
        logger.warning("pre-connect request to %s failed: %s", request.http.url, outcome.text[:200])
        return returned_values(request, None)
    try:
        answer = json.loads(outcome.text)
    except ValueError:
        logger.warning("pre-connect request to %s answered with no JSON", request.http.url)
        answer = None
    return returned_values(request, answer)


async def apply_pre_connect(
    config: SessionConfig, runner: HttpToolRunner | None, facts: Mapping[str, str]
) -> SessionConfig:
    """``config`` with its placeholders filled from its pre-connect requests (unchanged without any)."""
    requests = config.pre_connect_requests
    if not requests:
        return config
    answers = await asyncio.gather(*(call_pre_connect(runner, request, facts) for request in requests))
    values = {name: value for answer in answers for name, value in answer.items()}
    return config.model_copy(
        update={
            "system_prompt": fill_placeholders(config.system_prompt, values) or "",
            "greeting": fill_placeholders(config.greeting, values),
        }
    )
