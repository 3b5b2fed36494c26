"""Server-side HTTP tools (PROTOCOL.md §8.4), run with httpx.

Request construction: GET/DELETE put every argument in the query string (values as strings, ``null``
dropped, arrays/objects JSON-encoded), POST/PUT/PATCH send the arguments object as JSON. The stored
headers are sent as they are. Redirects are not followed, the response body given to the model is
capped at 8 KiB, and the destination must be ``https`` on a public address: the host is resolved and
every address it resolves to is checked, unless the operator listed the host in
``settings.http_tools_allowed_hosts`` (then plain ``http`` and private addresses are fine).

Nothing here raises for a failed call: timeouts, refused destinations and non-2xx answers become a short
error text the model can recover from.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from voxgate.conversation.ledger import tool_error_text
from voxgate.protocol.config import HttpSpec

RESPONSE_CAP_BYTES = 8 * 1024
QUERY_METHODS = frozenset({"GET", "DELETE"})


class DestinationRefused(Exception):
    """The URL is not allowed (scheme, private address, unresolvable host)."""


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


def _address_is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_destination(url: str, allowed_hosts: Collection[str]) -> None:
    """Raise :class:`DestinationRefused` unless ``url`` may be called."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("the tool URL has no host")
    if host in {h.lower() for h in allowed_hosts}:
        if parts.scheme not in ("http", "https"):
            raise DestinationRefused("the tool URL must use http or https")
        return
    if parts.scheme != "https":
        raise DestinationRefused("the tool URL must use https")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DestinationRefused(f"the tool host '{host}' does not resolve") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses:
        raise DestinationRefused(f"the tool host '{host}' does not resolve")
    private = sorted(a for a in addresses if not _address_is_public(a))
    if private:
        raise DestinationRefused(f"the tool host '{host}' resolves to a non-public address")


def build_request(
    client: httpx.AsyncClient, spec: HttpSpec, arguments: Mapping[str, Any], headers: Mapping[str, str]
) -> httpx.Request:
    method = spec.http_method
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
        self._allowed_hosts = tuple(allowed_hosts)
        self._client = httpx.AsyncClient(follow_redirects=False, transport=transport, trust_env=False)

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
                await check_destination(spec.url, self._allowed_hosts)
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
