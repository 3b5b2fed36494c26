"""A request id for every HTTP request: ``req_<24 hex>``, sent back in the ``X-Request-Id`` header and in
the ``request_id`` of every error body (HOSTED.md §1), and logged with server errors.

``RequestIdMiddleware`` must be the outermost middleware of the app's own stack: it stores the id in the
ASGI scope's ``state`` (``request.state.request_id``), where the error handlers (also the 500 handler,
which Starlette runs outside every middleware) and the body-size limit read it. An id the client sends
is not trusted; the server always makes its own.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PREFIX = "req_"


def new_request_id() -> str:
    return REQUEST_ID_PREFIX + secrets.token_hex(12)


def request_id_of(scope: Scope) -> str:
    """The id of the request of ``scope`` (assigned here if the middleware did not run)."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        request_id = state["request_id"] = new_request_id()
    return request_id


def connection_request_id(connection: HTTPConnection) -> str:
    return request_id_of(connection.scope)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
