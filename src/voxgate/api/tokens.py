"""Mint a one-time temporary token for a browser WebSocket: ``GET /v1/token`` (PROTOCOL.md §2.2) and
``POST /v1/tokens`` (HOSTED.md §3). Both take the same two settings; the GET answer keeps its
``expires_in_seconds`` and adds ``expires_at``, the POST answer is exactly ``{token, expires_at}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from voxgate.api.auth import require_principal
from voxgate.api.rest_errors import RESPONSE_401, RESPONSE_422
from voxgate.config import Settings
from voxgate.store import MintedToken, Principal, Store
from voxgate.store.timestamps import format_timestamp

router = APIRouter(tags=["tokens"])

DEFAULT_EXPIRES_IN_SECONDS = 60
MAX_EXPIRES_IN_SECONDS = 600
MIN_SESSION_SECONDS = 60
MAX_SESSION_SECONDS = 10_800


class TokenResponse(BaseModel):
    token: str = Field(description="Opaque one-time credential; connect with `/v1/ws?token=<token>`.")
    expires_in_seconds: int = Field(description="The redemption window that was granted.")
    expires_at: str = Field(description="End of the redemption window, RFC 3339 UTC.")


class TokenCreate(BaseModel):
    """Body of ``POST /v1/tokens``; every field optional, unknown fields ignored."""

    model_config = ConfigDict(extra="allow")

    expires_in_seconds: int = Field(
        DEFAULT_EXPIRES_IN_SECONDS,
        ge=1,
        le=MAX_EXPIRES_IN_SECONDS,
        description="How long the token may be used to open a session.",
    )
    max_session_duration_seconds: int = Field(
        MAX_SESSION_SECONDS,
        ge=MIN_SESSION_SECONDS,
        le=MAX_SESSION_SECONDS,
        description="Cap on the session's length.",
    )


class CreatedToken(BaseModel):
    token: str = Field(description="Opaque one-time credential for `/v1/ws`.")
    expires_at: str = Field(description="End of the redemption window, RFC 3339 UTC.")


@router.get(
    "/v1/token",
    response_model=TokenResponse,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="mintToken",
    summary="Mint a temporary one-time token",
)
async def mint_token(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    expires_in_seconds: Annotated[
        int,
        Query(
            ge=1, le=MAX_EXPIRES_IN_SECONDS, description="How long the token may be used to open a session."
        ),
    ] = DEFAULT_EXPIRES_IN_SECONDS,
    max_session_duration_seconds: Annotated[
        int,
        Query(ge=MIN_SESSION_SECONDS, le=MAX_SESSION_SECONDS, description="Cap on the session's length."),
    ] = MAX_SESSION_SECONDS,
) -> TokenResponse:
    minted = await _mint(request, principal, expires_in_seconds, max_session_duration_seconds)
    return TokenResponse(
        token=minted.token,
        expires_in_seconds=minted.expires_in_seconds,
        expires_at=format_timestamp(minted.expires_at),
    )


@router.post(
    "/v1/tokens",
    response_model=CreatedToken,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="createToken",
    summary="Create a temporary one-time token",
)
async def create_token(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    body: Annotated[TokenCreate | None, Body()] = None,
) -> CreatedToken:
    wanted = body or TokenCreate()
    minted = await _mint(request, principal, wanted.expires_in_seconds, wanted.max_session_duration_seconds)
    return CreatedToken(token=minted.token, expires_at=format_timestamp(minted.expires_at))


async def _mint(
    request: Request, principal: Principal, expires_in_seconds: int, max_session_duration_seconds: int
) -> MintedToken:
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    return await store.tokens.mint(
        principal.project_id,
        expires_in_seconds=expires_in_seconds,
        max_session_duration_seconds=min(max_session_duration_seconds, settings.max_session_duration_seconds),
        api_key_id=principal.key_id,
    )
