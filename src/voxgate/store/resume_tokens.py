"""Resume tokens (HOSTED.md §4): the credential, handed out in ``session.ready``, that reconnects to one
session and to no other.

A resume token is stateless: an HMAC-SHA256 signature, with a key derived from the server's secret key
(:meth:`~voxgate.store.secret_box.SecretBox.derive_key`), over the session id, the project and the
token's expiry. Any instance that shares the secret key verifies it without storage, so a session resumes
on whichever instance the client reaches (the checkpoint itself is in Redis). The token may be used for
every drop of its session until it expires (the session's hard end plus the resume grace window); whether
the session can still be resumed is the checkpoint store's answer, as with an API key.

Format: ``vgr_<payload>.<signature>``, both base64url without padding; the payload is compact JSON
``{"s": session_id, "p": project_id, "e": expires_at}`` (epoch seconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

RESUME_TOKEN_PREFIX = "vgr_"
MAX_RESUME_TOKEN_CHARS = 1024
SIGNING_PURPOSE = "resume-token-v1"


@dataclass(frozen=True, slots=True)
class ResumeGrant:
    """What a valid resume token entitles its bearer to: resuming ``session_id`` of ``project_id``."""

    session_id: str
    project_id: str
    expires_at: int


class ResumeTokens:
    """Issues and verifies resume tokens with one signing key."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    @classmethod
    def ephemeral(cls) -> ResumeTokens:
        """Tokens valid in this process only (a random key): for engines run without a server."""
        return cls(secrets.token_bytes(32))

    def issue(self, session_id: str, project_id: str, expires_at: int) -> str:
        payload = json.dumps({"s": session_id, "p": project_id, "e": int(expires_at)}, separators=(",", ":"))
        body = _encode(payload.encode())
        return f"{RESUME_TOKEN_PREFIX}{body}.{_encode(self._sign(body))}"

    def verify(self, token: str) -> ResumeGrant | None:
        """The grant of a well-formed, correctly signed, unexpired token; None otherwise."""
        if not token.startswith(RESUME_TOKEN_PREFIX) or len(token) > MAX_RESUME_TOKEN_CHARS:
            return None
        body, _, signature = token[len(RESUME_TOKEN_PREFIX) :].partition(".")
        try:
            valid = hmac.compare_digest(_decode(signature), self._sign(body))
            claims = json.loads(_decode(body)) if valid else None
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        session_id, project_id, expires_at = claims.get("s"), claims.get("p"), claims.get("e")
        if not (isinstance(session_id, str) and isinstance(project_id, str) and isinstance(expires_at, int)):
            return None
        if expires_at <= self._clock():
            return None
        return ResumeGrant(session_id, project_id, expires_at)

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
