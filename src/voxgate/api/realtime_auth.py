"""Who may open a realtime connection (PROTOCOL.md §2, HOSTED.md §3-§4), and to do what.

One credential per connection, from ``?token=`` (which wins) or the ``Authorization`` header (raw or
``Bearer``). It is told apart by its prefix:

- ``vgt_…``: a one-time token (``store.tokens``), spent by this connection; a new session or a resume;
- ``vgr_…``: a resume token (``store.resume_tokens``), which only resumes its own session;
- anything else in the header: an API key (``store.keys``). An API key in ``?token=`` is refused.

Every refusal is an ``unauthorized`` :class:`~voxgate.protocol.events.ProtocolError` (close 1008).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from voxgate.api.auth import extract_api_key
from voxgate.config import Settings
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.protocol.events import ProtocolError
from voxgate.store import Store
from voxgate.store.resume_tokens import RESUME_TOKEN_PREFIX, SIGNING_PURPOSE, ResumeTokens
from voxgate.store.secret_box import SecretBox
from voxgate.store.tokens import TOKEN_PREFIX


@dataclass(frozen=True, slots=True)
class RealtimeGrant:
    project_id: str
    max_session_seconds: float
    resume_only: str | None = None
    """Set for a resume token: the one session id this connection may resume (and nothing else)."""
    channel: str = "websocket"
    """How the client connected, for its session record: ``websocket`` (an API key) or ``browser`` (a
    one-time token)."""
    key_id: str | None = None
    """The API key behind the connection (the key itself, or the one that minted its token)."""


def resume_token_signer(state: Any, settings: Settings) -> ResumeTokens:
    """The instance's resume-token signer, keyed from the server's secret key (shared by instances)."""
    signer = getattr(state, "resume_tokens", None)
    if signer is None:
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        signer = ResumeTokens(box.derive_key(SIGNING_PURPOSE))
        state.resume_tokens = signer
    return signer  # type: ignore[no-any-return]


def _refusal(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.UNAUTHORIZED, message)


async def authenticate_realtime(
    connection: HTTPConnection, settings: Settings
) -> RealtimeGrant | ProtocolError:
    """The grant of the connection's credential, or the error to reject it with."""
    store: Store | None = connection.app.state.store
    if store is None:
        return ProtocolError(
            ErrorCode.INTERNAL_ERROR, "the server is starting", close=CloseCode.INTERNAL_ERROR
        )
    query_token = connection.query_params.get("token")
    header = connection.headers.get("authorization")
    if not query_token and header is None:
        return _refusal("missing Authorization header or token")
    credential = query_token or extract_api_key(header)
    if not credential:
        return _refusal("invalid API key")
    server_cap = float(settings.max_session_duration_seconds)
    if credential.startswith(TOKEN_PREFIX):
        grant = await store.tokens.redeem(credential)
        if grant is None:
            return _refusal("invalid, expired or used token")
        cap = min(server_cap, float(grant.max_session_duration_seconds))
        return RealtimeGrant(grant.project_id, cap, channel="browser", key_id=grant.api_key_id)
    if credential.startswith(RESUME_TOKEN_PREFIX):
        resume = resume_token_signer(connection.app.state, settings).verify(credential)
        if resume is None:
            return _refusal("invalid or expired resume token")
        return RealtimeGrant(resume.project_id, server_cap, resume_only=resume.session_id)
    if query_token:
        return _refusal("invalid, expired or used token")
    principal = await store.keys.verify(credential)
    if principal is None:
        return _refusal("invalid API key")
    return RealtimeGrant(principal.project_id, server_cap, key_id=principal.key_id)
