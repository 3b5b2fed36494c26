"""``GET /metrics`` (Prometheus text format) and ``GET /metrics/turns`` (recent per-turn timings, JSON).

``/metrics`` is unauthenticated, as Prometheus scrapers expect: it carries counts and latencies only (no
ids, no text). ``/metrics/turns`` needs an API key and shows only the turns of the caller's project; the
latency benchmark reads the server-side stages of its own sessions there.

Including this router installs the process-wide feeds (voxgate.telemetry.process_feeds) and, through the
router's lifespan, runs the event-loop lag probe while the server is up. Each session is metered by its
own telemetry object, which its transport makes (voxgate.telemetry.session_meter).

Under ``voxgate serve --workers N`` (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``) any
worker answers both for all workers: ``/metrics`` merges every worker's metric files and
``/metrics/turns`` every worker's recent turns; the lifespan also samples this worker's scrape-time
figures and marks the worker dead when it stops (voxgate.telemetry.multiprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel, Field

from voxgate.api.auth import require_principal
from voxgate.api.rest_errors import RESPONSE_401, RESPONSE_422
from voxgate.store import Principal
from voxgate.telemetry import process_feeds
from voxgate.telemetry.exposition import exposition
from voxgate.telemetry.multiprocess import mark_worker_dead, multiprocess_directory
from voxgate.telemetry.recent_turns import RECENT_TURN_LIMIT, recent_turns
from voxgate.telemetry.runtime import sample_worker_figures, watch_event_loop

MAX_TURNS = RECENT_TURN_LIMIT


@contextlib.asynccontextmanager
async def _probe_event_loop(app: FastAPI) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(watch_event_loop(), name="event-loop-lag-probe")]
    if multiprocess_directory() is not None:
        tasks.append(asyncio.create_task(sample_worker_figures(), name="worker-metrics"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        mark_worker_dead()


process_feeds.install()
router = APIRouter(tags=["observability"], lifespan=_probe_event_loop)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Prometheus text format"}},
    operation_id="metrics",
    summary="Prometheus metrics",
)
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class TurnRecord(BaseModel):
    session_id: str
    reply_id: str | None
    finished_at: float = Field(description="Unix time at which the reply finished.")
    user_turn: bool = Field(
        description="The reply answered a user turn (false: a greeting, reply.create or tool follow-up)."
    )
    stages_ms: dict[str, float | None] = Field(
        description="Milliseconds per stage (see voxgate.telemetry.turn_stages.TURN_STAGES); null when not "
        "reached."
    )


class TurnList(BaseModel):
    turns: list[TurnRecord]


@router.get(
    "/metrics/turns",
    response_model=TurnList,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="listRecentTurns",
    summary="Recent per-turn timings of this project's sessions",
)
async def list_recent_turns(
    principal: Annotated[Principal, Depends(require_principal)],
    session_id: Annotated[
        list[str] | None, Query(description="Only these sessions (repeat the parameter for several).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TURNS, description="At most this many, newest last.")] = 200,
) -> TurnList:
    if multiprocess_directory() is None:
        turns = recent_turns(principal.project_id, session_id)
    else:  # reads the other workers' files
        turns = await asyncio.to_thread(recent_turns, principal.project_id, session_id)
    return TurnList(turns=[TurnRecord(**turn) for turn in turns[-limit:]])
