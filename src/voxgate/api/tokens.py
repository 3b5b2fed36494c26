"""``GET /v1/token``: mint a one-time temporary token for a browser WebSocket (PROTOCOL.md §2.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from voxgate.api.auth import require_principal
from voxgate.api.rest_errors import RESPONSE_401, RESPONSE_422
from voxgate.config import Settings
from voxgate.store import Principal, Store
from voxgate.store.agent_documents import format_timestamp

router = APIRouter(tags=["tokens"])

DEFAULT_EXPIRES_IN_SECONDS = 60
MAX_EXPIRES_IN_SECONDS = 600
MIN_SESSION_SECONDS = 60
MAX_SESSION_SECONDS = 10_800


class TokenResponse(BaseModel):
    token: str = Field(description="Opaque one-time credential; connect with `/v1/ws?token=<token>`.")
    expires_in_seconds: int = Field(description="The redemption window that was granted.")
    expires_at: str = Field(description="End of the redemption window, ISO-8601 UTC.")


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
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    minted = await store.tokens.mint(
        principal.project_id,
        expires_in_seconds=expires_in_seconds,
        max_session_duration_seconds=min(max_session_duration_seconds, settings.max_session_duration_seconds),
    )
    return TokenResponse(
        token=minted.token,
        expires_in_seconds=minted.expires_in_seconds,
        expires_at=format_timestamp(minted.expires_at),
    )
