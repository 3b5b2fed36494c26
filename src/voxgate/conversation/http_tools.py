"""Server-side HTTP tools (PROTOCOL.md §8.4), run with httpx.

Request construction: GET/DELETE put every argument in the query string (values as strings, ``null``
dropped, arrays/objects JSON-encoded), POST/PUT/PATCH send the arguments object as JSON. The stored
headers are sent as they are, except transport headers (:mod:`voxgate.outbound.forbidden_headers`), which
are dropped. The destination rules are the shared outbound policy (:mod:`voxgate.outbound.policy`): ``https``
on a public address, checked when the connection is made and pinned to the checked address, unless the
operator listed the host in ``settings.http_tools_allowed_hosts`` (then plain ``http`` and private
addresses are fine); redirects are not followed; the response body given to the model is capped at 8 KiB.

Nothing here raises for a failed call: timeouts, refused destinations and non-2xx answers become a short
error text the model can recover from.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from voxgate.conversation.builtin_tools import run_builtin, server_builtin
from voxgate.conversation.ledger import ToolCallRecord, tool_error_text
from voxgate.conversation.tools import ToolSet, http_headers
from voxgate.outbound.forbidden_headers import header_is_forbidden
from voxgate.outbound.policy import DestinationRefused, OutboundPolicy, outbound_client
from voxgate.protocol.config import HttpSpec

logger = logging.getLogger(__name__)

RESPONSE_CAP_BYTES = 8 * 1024
QUERY_METHODS = frozenset({"GET", "DELETE"})


@dataclass(frozen=True, slots=True)
class HttpToolOutcome:
    text: str
    """What the model receives as the tool result."""
    is_error: bool
    status_code: int | None = None


def _query_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def query_params(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), _query_value(v)) for k, v in arguments.items() if v is not None]


async def check_destination(url: str, allowed_hosts: Collection[str]) -> None:
    """Raise :class:`DestinationRefused` unless ``url`` may be called (the shared outbound policy)."""
    await OutboundPolicy.allowing(allowed_hosts).check_destination(url)


def sendable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without transport headers (stored before they were refused at validation)."""
    kept = {name: value for name, value in headers.items() if not header_is_forbidden(name)}
    if len(kept) != len(headers):
        dropped = sorted(set(headers) - set(kept))
        logger.warning("dropped transport headers from an HTTP tool request: %s", dropped)
    return kept


def build_request(
    client: httpx.AsyncClient, spec: HttpSpec, arguments: Mapping[str, Any], headers: Mapping[str, str]
) -> httpx.Request:
    method = spec.http_method
    headers = sendable_headers(headers)
    if method in QUERY_METHODS:
        url = httpx.URL(spec.url)
        params = list(url.params.multi_items()) + query_params(arguments)
        return client.build_request(method, url.copy_with(query=None), params=params, headers=dict(headers))
    return client.build_request(
        method,
        spec.url,
        content=json.dumps(dict(arguments)).encode(),
        headers={
            "Content-Type": "application/json",
            **headers,
        },
    )


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) >= RESPONSE_CAP_BYTES:
            break
    return bytes(body[:RESPONSE_CAP_BYTES])


class HttpToolRunner:
    """Runs HTTP tools for every session of a process with one shared connection pool."""

    def __init__(
        self, allowed_hosts: Collection[str] = (), *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._client = outbound_client(OutboundPolicy.allowing(allowed_hosts), transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(
        self,
        spec: HttpSpec,
        arguments: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        timeout_seconds: float,
    ) -> HttpToolOutcome:
        try:
            async with asyncio.timeout(timeout_seconds):
                request = build_request(self._client, spec, arguments, headers)
                request.extensions["timeout"] = httpx.Timeout(timeout_seconds).as_dict()
                response = await self._client.send(request, stream=True)
                try:
                    body = await _read_capped(response)
                finally:
                    await response.aclose()
        except DestinationRefused as exc:
            return HttpToolOutcome(tool_error_text(f"The tool could not be called: {exc}."), True)
        except (TimeoutError, httpx.TimeoutException):
            return HttpToolOutcome(
                tool_error_text(f"The tool did not answer within {timeout_seconds:g} seconds."), True
            )
        except httpx.HTTPError as exc:
            return HttpToolOutcome(tool_error_text(f"The tool request failed: {type(exc).__name__}."), True)
        text = body.decode("utf-8", errors="replace")
        if not 200 <= response.status_code < 300:
            return HttpToolOutcome(
                tool_error_text(f"The tool answered with HTTP status {response.status_code}: {text[:500]}"),
                True,
                response.status_code,
            )
        return HttpToolOutcome(text, False, response.status_code)


async def run_http_tool(
    runner: HttpToolRunner | None, tools: ToolSet, record: ToolCallRecord
) -> HttpToolOutcome:
    """The one place an HTTP tool call (or a built-in server tool's) is executed: by a reply
    (``interactive``: the reply goes on with the result) or by the session after the reply (``hold``)."""
    spec = tools.find(record.name)
    if spec is not None and (builtin := server_builtin(spec)) is not None:
        outcome = run_builtin(builtin, record.arguments)
        return HttpToolOutcome(outcome.text, outcome.is_error)
    if spec is None or spec.http is None or runner is None:
        return HttpToolOutcome(tool_error_text("The tool is not available."), True)
    return await runner.run(
        spec.http, record.arguments, headers=http_headers(spec), timeout_seconds=spec.timeout_seconds
    )
