"""The webhook signature header: ``X-AAI-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.

A receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes with its secret, compares
in constant time, and refuses old timestamps (replays). :func:`verify` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-AAI-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify(
    secret: str, body: bytes, header: str | None, *, tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_seconds`` old."""
    if not header:
        return False
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        moment = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - moment) > tolerance_seconds:
        return False
    expected = _digest(secret, moment, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def _digest(secret: str, moment: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
