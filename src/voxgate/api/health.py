"""``GET /healthz`` (liveness: the process answers and the database answers a read) and ``GET /readyz``
(readiness: the instance admits sessions and the database commits a write). A read-only, full, locked
or corrupt database can still answer reads: put ``/readyz`` behind a load balancer's check."""

from __future__ import annotations

import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voxgate import __version__
from voxgate.api.rest_errors import described
from voxgate.config import Settings
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


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: described("The database does not take writes, or the instance is draining")},
    operation_id="readyz",
    summary="Readiness check (a database write)",
)
async def readyz(request: Request) -> JSONResponse:
    drain = getattr(request.app.state, "drain", None)
    if drain is not None and not drain.admitting:
        body = {"detail": "Draining", "code": "unavailable", "message": "This instance is shutting down"}
        return JSONResponse(body, status_code=503)
    store: Store = request.app.state.store
    settings: Settings = request.app.state.settings
    try:
        await store.probe_write(f"{settings.instance_id}:{os.getpid()}"[:128])
    except Exception as exc:
        logger.error("readiness check: the database does not take writes: %s", exc)
        message = "Database does not take writes"
        return JSONResponse({"detail": message, "code": "unavailable", "message": message}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})
