"""The outbound-URL policy shared by every request voxgate makes for a tenant: HTTP tools, bring-your-own
LLMs (and pre-connect requests and webhooks, which call the same functions).

Rules, unless the operator listed the URL's host in ``VOXGATE_HTTP_TOOLS_ALLOWED_HOSTS``:

- the scheme is ``https``;
- the host is not a private address in any spelling, nor a local name (:mod:`voxgate.outbound.addresses`);
- every address the host resolves to is public, and the connection goes to one of those checked addresses
  (the check runs inside the HTTP client's connect step, so a DNS answer that changes between the check
  and the connection cannot point it inside: the address connected to is the one that was checked);
- redirects are not followed and response bodies are bounded (:func:`outbound_client`).

An operator-allowed host may use plain ``http`` and any address. Three entry points:

- :meth:`OutboundPolicy.url_refusal` (no DNS): validation of a stored or inline URL (REST 422 / session
  ``invalid_value``);
- :meth:`OutboundPolicy.check_destination`: the same plus resolution, for a caller that wants an early answer;
- :func:`outbound_client` / :class:`PolicyTransport`: an ``httpx`` client that enforces all of it on every
  connection it opens; a refusal raises :class:`DestinationRefused`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx

from voxgate.outbound.addresses import (
    address_is_public,
    host_literal,
    host_refusal,
    normalise_host,
    url_refusal,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; raises OSError when the name does not resolve."""


class DestinationRefused(Exception):
    """The URL may not be called (scheme, private address, a name resolving inside, unresolvable host)."""


class ResponseTooLarge(httpx.ReadError):
    """The response body went over the client's limit; the rest was not read."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allowed_hosts: frozenset[str] = frozenset()
    """Hosts (names or addresses, as written in URLs) the operator allows over http and on any address."""
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def allowing(cls, hosts: Iterable[str], resolver: Resolver = system_resolver) -> OutboundPolicy:
        return cls(frozenset(normalise_host(host) for host in hosts if host.strip()), resolver)

    def host_is_allowed(self, host: str) -> bool:
        return normalise_host(host) in self.allowed_hosts

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called, judged without DNS, or None."""
        return url_refusal(url, self.allowed_hosts)

    async def addresses_for(self, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host`` may use: all checked public ones (or, for an allowed
        host, whatever it is). Raises :class:`DestinationRefused`."""
        if self.host_is_allowed(host):
            return [host]
        if (refusal := host_refusal(host)) is not None:
            raise DestinationRefused(f"the {refusal}")
        literal = host_literal(host)
        if literal is not None:
            return [str(literal)]
        try:
            addresses = await self.resolver(normalise_host(host), port)
        except OSError as exc:
            raise DestinationRefused(f"the host '{host}' does not resolve") from exc
        if not addresses:
            raise DestinationRefused(f"the host '{host}' does not resolve")
        if not all(address_is_public(address) for address in addresses):
            raise DestinationRefused(f"the host '{host}' resolves to a non-public address")
        return addresses

    async def check_destination(self, url: str) -> None:
        """Raise :class:`DestinationRefused` unless ``url`` may be called now (resolving its host)."""
        if (refusal := self.url_refusal(url)) is not None:
            raise DestinationRefused(f"the URL {refusal}")
        parts = urlsplit(url)
        await self.addresses_for(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


class _CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy checked: the name is resolved here, not by the socket layer."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._policy.addresses_for(host, port):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._limit:
                raise ResponseTooLarge(f"the response body exceeds {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the policy on every request (scheme and host) and every connection
    (resolved, checked and pinned addresses); no environment proxies; bodies over ``max_response_bytes``
    raise :class:`ResponseTooLarge` while they are read."""

    def __init__(self, policy: OutboundPolicy, *, max_response_bytes: int | None = None) -> None:
        super().__init__(trust_env=False)
        self._policy = policy
        self._max_response_bytes = max_response_bytes
        # The same pool httpx builds, with the checking network backend (httpx has no parameter for it).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedNetworkBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        refusal = self._policy.url_refusal(str(request.url))
        if refusal is not None:
            raise DestinationRefused(f"the URL {refusal}")
        response = await super().handle_async_request(request)
        if self._max_response_bytes is None:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self._max_response_bytes)
        return response


def outbound_client(
    policy: OutboundPolicy,
    *,
    max_response_bytes: int | None = None,
    timeout: httpx.Timeout | float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` under ``policy``: no redirects, no environment proxies, bounded bodies.
    ``transport`` replaces the policy transport (tests only)."""
    return httpx.AsyncClient(
        transport=transport or PolicyTransport(policy, max_response_bytes=max_response_bytes),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    )
