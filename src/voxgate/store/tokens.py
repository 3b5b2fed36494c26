"""One-time temporary tokens (PROTOCOL.md §2.2), stored as SHA-256 hashes.

Redemption is a single conditional ``UPDATE ... RETURNING``: of any number of concurrent redemptions of
one token exactly one succeeds, on SQLite and PostgreSQL alike, and none succeeds after expiry.

A token has one purpose: ``realtime`` (``GET /v1/token``, ``POST /v1/tokens``: one ``/v1/ws`` session) or
``phone_stream`` (minted by the Twilio voice webhook: the media stream of one agent); it is redeemed only
for its purpose. A realtime token remembers the API key that minted it and stops working when that key
is revoked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from voxgate.store.keys import hash_secret
from voxgate.store.tables import ApiKeyRow, TokenRow, utc_now

TOKEN_PREFIX = "vgt_"
MAX_TOKEN_CHARS = 256
EXPIRED_TOKEN_RETENTION = timedelta(hours=1)
"""Spent or expired tokens are deleted this long after expiry (when the next token is minted)."""

_tokens = TokenRow.__table__
TokenPurpose = Literal["realtime", "phone_stream"]


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    expires_in_seconds: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a redeemed token entitles its bearer to: one session in ``project_id``, at most
    ``max_session_duration_seconds`` long."""

    project_id: str
    max_session_duration_seconds: int
    agent_id: str | None = None
    """A phone-stream token's agent: the only agent its session may use."""
    api_key_id: str | None = None
    """The key that minted a realtime token (its session ends when the key is revoked)."""


class TokenRepository:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now) -> None:
        """``clock`` returns the current aware UTC time (injectable so tests can move time)."""
        self._engine = engine
        self._clock = clock

    async def mint(
        self,
        project_id: str,
        expires_in_seconds: int,
        max_session_duration_seconds: int,
        *,
        purpose: TokenPurpose = "realtime",
        agent_id: str | None = None,
        api_key_id: str | None = None,
    ) -> MintedToken:
        """Create a token redeemable once within ``expires_in_seconds``. Also purges long-expired ones."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + timedelta(seconds=expires_in_seconds)
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(_tokens).where(_tokens.c.expires_at < now - EXPIRED_TOKEN_RETENTION)
            )
            await connection.execute(
                insert(_tokens).values(
                    token_hash=hash_secret(token),
                    project_id=project_id,
                    max_session_duration_seconds=max_session_duration_seconds,
                    created_at=now,
                    expires_at=expires_at,
                    redeemed_at=None,
                    purpose=purpose,
                    agent_id=agent_id,
                    api_key_id=api_key_id,
                )
            )
        return MintedToken(token=token, expires_in_seconds=expires_in_seconds, expires_at=expires_at)

    async def redeem(self, token: str, purpose: TokenPurpose = "realtime") -> TokenGrant | None:
        """Spend a token: its grant on the first redemption within the window; None if it is unknown,
        already redeemed, expired, minted for another purpose or by a key revoked since. Atomic across
        connections, processes and instances."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        now = self._clock()
        statement = (
            update(_tokens)
            .where(
                _tokens.c.token_hash == hash_secret(token),
                _tokens.c.redeemed_at.is_(None),
                _tokens.c.expires_at > now,
                _tokens.c.purpose == purpose,
                ~exists(
                    select(ApiKeyRow.id).where(
                        ApiKeyRow.id == _tokens.c.api_key_id, ApiKeyRow.revoked_at.is_not(None)
                    )
                ),
            )
            .values(redeemed_at=now)
            .returning(
                _tokens.c.project_id,
                _tokens.c.max_session_duration_seconds,
                _tokens.c.agent_id,
                _tokens.c.api_key_id,
            )
        )
        async with self._engine.begin() as connection:
            row = (await connection.execute(statement)).first()
        if row is None:
            return None
        return TokenGrant(
            project_id=row.project_id,
            max_session_duration_seconds=row.max_session_duration_seconds,
            agent_id=row.agent_id,
            api_key_id=row.api_key_id,
        )
