"""Session history REST API (HOSTED.md §6): ``/v1/sessions`` and its webhook deliveries.

``GET /v1/sessions?limit&cursor&status&agent_id`` lists records newest first; ``GET /v1/sessions/{id}``
adds ``channel``, ``config`` (no secrets) and ``artifacts`` (signed links, once the session ended);
``DELETE`` removes an ended session's record, artifacts and deliveries (an active one is 409).
A session of another project is a 404 like one that does not exist.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voxgate.api.auth import require_principal
from voxgate.api.list_pages import PageQuery, ResponseMetadata, list_body
from voxgate.api.rest_errors import RESPONSE_401, RESPONSE_422, ApiError, described, error_body
from voxgate.history.service import HistoryService
from voxgate.store import Principal
from voxgate.store.paging import PageRequest
from voxgate.store.session_records import ENDED, session_item
from voxgate.store.tables import SessionRecordRow

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SESSION_NOT_FOUND = "Session not found"
RESPONSE_404 = {404: described("No session with this id in the caller's project"), **RESPONSE_422}

SessionId = Annotated[str, Path(description="The session id (`sess_...`).")]
CallerPrincipal = Annotated[Principal, Depends(require_principal)]


class SessionItem(BaseModel):
    id: str
    agent_id: str | None
    status: Literal["active", "ended"]
    public_close_reason: str | None
    duration_seconds: float | None
    created_at: str
    ended_at: str | None


class ArtifactLink(BaseModel):
    type: Literal["audio", "timeline", "metadata"]
    url: str
    content_type: str
    complete: bool


class SessionDetail(SessionItem):
    channel: str
    config: dict[str, Any]
    artifacts: list[ArtifactLink]


class SessionList(BaseModel):
    sessions: list[SessionItem]
    has_more: bool
    response_metadata: ResponseMetadata


class Delivery(BaseModel):
    id: str
    subscription_id: str | None
    session_id: str | None
    event_type: str
    attempt_count: int
    status: Literal["pending", "delivered", "failed"]
    http_status_code: int | None
    error: str | None
    delivered_at: str | None
    next_retry_at: str | None
    created_at: str


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    has_more: bool
    response_metadata: ResponseMetadata


@router.get(
    "",
    response_model=SessionList,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="listSessions",
    summary="List sessions, newest first (cursor paging)",
)
async def list_sessions(
    request: Request,
    principal: CallerPrincipal,
    page: Annotated[PageQuery, Depends()],
    status: Annotated[Literal["active", "ended"] | None, Query(description="Only this status.")] = None,
    agent_id: Annotated[str | None, Query(max_length=128, description="Only this agent's.")] = None,
) -> JSONResponse:
    sessions = await _history(request).store.sessions.list(
        principal.project_id, page.request, status=status, agent_id=agent_id
    )
    return JSONResponse(list_body("sessions", sessions))


@router.get(
    "/{session_id}",
    response_model=SessionDetail,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="getSession",
    summary="Retrieve a session with its configuration and artifact links",
)
async def get_session(request: Request, principal: CallerPrincipal, session_id: SessionId) -> JSONResponse:
    row = await _load(request, principal, session_id)
    return JSONResponse(session_detail(row, _history(request), _base_url(request)))


@router.delete(
    "/{session_id}",
    status_code=204,
    response_class=Response,
    responses={**RESPONSE_401, **RESPONSE_404, 409: described("The session is still active")},
    operation_id="deleteSession",
    summary="Delete an ended session: its record, artifacts and webhook deliveries",
)
async def delete_session(request: Request, principal: CallerPrincipal, session_id: SessionId) -> Response:
    row = await _load(request, principal, session_id)
    if row.status != ENDED:
        raise ApiError(
            409, error_body("session_active", "The session is still active; delete it once it ended")
        )
    if not await _history(request).delete_session(principal.project_id, session_id):
        raise _not_found()
    return Response(status_code=204)


@router.get(
    "/{session_id}/webhook-deliveries",
    response_model=DeliveryList,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="listSessionWebhookDeliveries",
    summary="The session's webhook deliveries, newest first (cursor paging)",
)
async def list_deliveries(
    request: Request, principal: CallerPrincipal, session_id: SessionId, page: Annotated[PageQuery, Depends()]
) -> JSONResponse:
    await _load(request, principal, session_id)
    deliveries = await _history(request).store.outbox.list_for_session(
        principal.project_id, session_id, page.request
    )
    return JSONResponse(list_body("deliveries", deliveries))


@router.get(
    "/{session_id}/webhook-deliveries/latest",
    response_model=Delivery,
    responses={**RESPONSE_401, 404: described("No such session, or it has no delivery")},
    operation_id="getLatestSessionWebhookDelivery",
    summary="The session's newest webhook delivery",
)
async def latest_delivery(
    request: Request, principal: CallerPrincipal, session_id: SessionId
) -> JSONResponse:
    await _load(request, principal, session_id)
    page = await _history(request).store.outbox.list_for_session(
        principal.project_id, session_id, PageRequest(limit=1)
    )
    if not page.rows:
        raise ApiError(404, error_body("not_found", "The session has no webhook delivery"))
    return JSONResponse(page.rows[0])


def session_detail(row: SessionRecordRow, history: HistoryService, base_url: str) -> dict[str, Any]:
    artifacts = []
    if row.status == ENDED:
        artifacts = [
            {
                "type": artifact["type"],
                "url": history.artifacts.link(base_url, row.id, artifact["name"]),
                "content_type": artifact["content_type"],
                "complete": bool(artifact.get("complete", True)),
            }
            for artifact in row.artifacts
        ]
    return {**session_item(row), "channel": row.channel, "config": row.config, "artifacts": artifacts}


def _history(request: Request) -> HistoryService:
    history: HistoryService | None = getattr(request.app.state, "history", None)
    if history is None:
        raise ApiError(503, error_body("unavailable", "The server is starting"), {"Retry-After": "1"})
    return history


def _base_url(request: Request) -> str:
    return request.app.state.settings.public_base_url or str(request.base_url)


def _not_found() -> ApiError:
    return ApiError(404, {"detail": SESSION_NOT_FOUND, "code": "session_not_found"})


async def _load(request: Request, principal: Principal, session_id: str) -> SessionRecordRow:
    if not SESSION_ID_PATTERN.fullmatch(session_id):
        raise _not_found()
    row = await _history(request).store.sessions.get(principal.project_id, session_id)
    if row is None:
        raise _not_found()
    return row
