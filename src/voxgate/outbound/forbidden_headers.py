"""Headers a tenant may not set on an outbound request (tool, pre-connect and webhook headers).

They belong to the transport, not to the request: ``Host`` would aim the request at another virtual host
than the checked URL, ``Content-Length`` and ``Transfer-Encoding`` would contradict the body the server
builds (smuggling, or a failed request), and the hop-by-hop headers (``Connection``, ``Keep-Alive``, ``TE``,
``Trailer``, ``Upgrade``, ``Proxy-*``) steer the connection itself. Names compare case-insensitively.
"""

from __future__ import annotations

FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "http2-settings",
    }
)
FORBIDDEN_PREFIXES = ("proxy-",)


def header_is_forbidden(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_PREFIXES)


def forbidden_header_refusal(name: str) -> str | None:
    """Why a tenant may not set header ``name``, or None."""
    if header_is_forbidden(name):
        return f"header '{name}' is set by the server's HTTP client and cannot be configured"
    return None
