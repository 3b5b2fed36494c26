"""``GET /healthz``: liveness plus a database round trip."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voxgate import __version__
from voxgate.api.rest_errors import described
from voxgate.store import Store

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


class HealthResponse(BaseModel):
    status: str
    version: str


@router.get(
    "/healthz",
    response_model=HealthResponse,
    responses={503: described("The database does not answer, or the instance is draining")},
    operation_id="healthz",
    summary="Health check",
)
async def healthz(request: Request) -> JSONResponse:
    drain = getattr(request.app.state, "drain", None)
    if drain is not None and not drain.admitting:
        body = {"detail": "Draining", "code": "UNAVAILABLE", "message": "This instance is shutting down"}
        return JSONResponse(body, status_code=503)
    store: Store = request.app.state.store
    try:
        await store.ping()
    except Exception:
        logger.exception("health check: database unavailable")
        body = {"detail": "Database unavailable", "code": "UNAVAILABLE", "message": "Database unavailable"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})
