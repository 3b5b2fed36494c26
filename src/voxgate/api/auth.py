"""API-key authentication for REST and WebSocket (PROTOCOL.md §2.1).

The key travels in the ``Authorization`` header, raw or with a ``Bearer`` prefix (matched
case-insensitively). Starlette header lookups are already case-insensitive on the header name.
"""

from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from voxgate.api.rest_errors import missing_authorization, unauthorized
from voxgate.store import Principal, Store

_BEARER = "bearer "

# Declared so that OpenAPI documents the scheme; we parse the value ourselves.
authorization_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="The API key, raw or as `Bearer <key>`.",
)


def extract_api_key(header_value: str | None) -> str | None:
    """The raw key from an ``Authorization`` header value (``<key>`` or ``Bearer <key>``, any case of
    ``Bearer``); None when the value is absent or blank. Works for HTTP and WebSocket upgrade headers."""
    if header_value is None:
        return None
    value = header_value.strip()
    if value[: len(_BEARER)].lower() == _BEARER:
        value = value[len(_BEARER) :].strip()
    elif value.lower() == _BEARER.strip():
        return None
    return value or None


async def authenticate_connection(connection: HTTPConnection) -> Principal | None:
    """Verify the ``Authorization`` header of an HTTP request or WebSocket upgrade against the store of
    ``connection.app.state.store``. None when the header is missing or the key is not valid."""
    raw_key = extract_api_key(connection.headers.get("authorization"))
    if raw_key is None:
        return None
    store: Store = connection.app.state.store
    return await store.keys.verify(raw_key)


async def require_principal(
    request: Request, _documented: str | None = Security(authorization_header)
) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 with the exact bodies of §3.6."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise missing_authorization()
    raw_key = extract_api_key(authorization)
    if raw_key is None:
        raise unauthorized()
    store: Store = request.app.state.store
    principal = await store.keys.verify(raw_key)
    if principal is None:
        raise unauthorized()
    return principal
