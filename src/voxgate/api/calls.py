"""Phone calls REST API (HOSTED.md §7): ``/v1/calls``.

``POST /v1/calls`` ``{to_number, from_number?, agent_id}`` places an outbound call through Twilio's REST
Calls API (``telephony.outbound``) whose TwiML URL is voxgate's voice webhook for the agent (naming the new
call record), with Twilio's status callbacks sent to ``/twilio/call-status``; ``from_number`` defaults
to the agent's ``caller_id``. The answer (201) is the call, ``dialing``. Twilio refusing the call is a
502 ``carrier_error`` (the call is recorded ``failed``); a server without Twilio credentials or a public
base URL answers 503 ``telephony_not_configured``. Unknown body fields are ignored.

``GET /v1/calls?limit&cursor&status&direction`` lists calls newest first, outbound and inbound (answered
by the voice webhook); ``GET /v1/calls/{id}`` reads one. A call of another project is a 404 like one
that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from voxgate.api.auth import require_principal
from voxgate.api.json_bodies import read_json_object
from voxgate.api.list_pages import PageQuery, ResponseMetadata, list_body
from voxgate.api.rest_errors import (
    RESPONSE_401,
    RESPONSE_422,
    RESPONSES_BODY,
    ApiError,
    described,
    error_body,
    validation_failed,
)
from voxgate.config import Settings
from voxgate.store import Principal, Store
from voxgate.store.call_states import CARRIER_REFUSED
from voxgate.telephony.outbound import PHONE_NUMBER, OutboundCallError, place_call
from voxgate.telephony.webhook import call_status_url, voice_webhook_url

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/calls", tags=["calls"])

CALL_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MAX_ADDRESS_CHARS = 64
MAX_AGENT_ID_CHARS = 128
RESPONSE_404 = {404: described("No call with this id in the caller's project"), **RESPONSE_422}
RESPONSES_PLACE = {
    404: described("No agent with this id in the caller's project"),
    502: described("Twilio refused the call or could not be reached (the call is recorded as failed)"),
    503: described("This server has no Twilio credentials or public base URL configured"),
}
CallId = Annotated[str, Path(description="The call id (`call_...`).")]
CallerPrincipal = Annotated[Principal, Depends(require_principal)]
CallStatus = Literal["dialing", "active", "ended", "failed", "refused"]
CallDirection = Literal["inbound", "outbound"]


class CallCreate(BaseModel):
    to_number: str = Field(description="The number to call: E.164 (`+14155550123`), or `sip:`/`client:`.")
    from_number: str | None = Field(None, description="Your Twilio number; default: the agent's `caller_id`.")
    agent_id: str | None = Field(None, description="The stored agent that talks on the call (required).")


class Call(BaseModel):
    id: str
    status: CallStatus
    direction: CallDirection
    agent_id: str | None
    from_number: str | None
    to_number: str | None
    session_id: str | None = Field(description="The call's session, once its media stream connected.")
    ended_at: str | None
    duration_seconds: float | None = Field(description="Seconds the call was connected (`active`).")
    created_at: str
    updated_at: str


class CallList(BaseModel):
    calls: list[Call]
    has_more: bool
    response_metadata: ResponseMetadata


@router.post(
    "",
    status_code=201,
    response_model=Call,
    responses={**RESPONSE_401, **RESPONSES_BODY, **RESPONSES_PLACE},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CallCreate.model_json_schema()}},
        }
    },
    operation_id="createCall",
    summary="Place an outbound phone call with a stored agent (Twilio)",
)
async def create_call(request: Request, principal: CallerPrincipal) -> JSONResponse:
    data = await read_json_object(request)
    to_number, from_number, agent_id = _call_fields(data)
    store = _store(request)
    agent = await store.agents.get(principal.project_id, agent_id)
    if agent is None:
        raise ApiError(404, {"detail": "Agent not found", "code": "agent_not_found", "param": "agent_id"})
    from_number = from_number or agent.get("caller_id")
    if not from_number:
        raise validation_failed(
            [(("body", "from_number"), "from_number is required: the agent has no caller_id", "missing")]
        )
    if not _is_address(from_number):
        problem = f"the agent's caller_id {_ADDRESS_PROBLEM}; send from_number"
        raise validation_failed([(("body", "from_number"), problem, "value_error")])
    settings: Settings = request.app.state.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.public_base_url):
        raise ApiError(
            503,
            error_body(
                "telephony_not_configured",
                "Placing calls needs VOXGATE_TWILIO_ACCOUNT_SID, VOXGATE_TWILIO_AUTH_TOKEN and "
                "VOXGATE_PUBLIC_BASE_URL on the server",
            ),
        )
    if not agent.get("greeting"):
        logger.warning("agent %s has no greeting: the callee hears silence until they speak", agent_id)
    call = await store.calls.place(principal.project_id, agent_id, from_number, to_number)
    try:
        placed = await asyncio.to_thread(
            place_call,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            to=to_number,
            from_=from_number,
            twiml_url=voice_webhook_url(settings.public_base_url, agent_id, call["id"]),
            api_base_url=settings.twilio_api_base_url,
            status_callback_url=call_status_url(settings.public_base_url, call["id"]),
        )
    except OutboundCallError as exc:
        logger.warning("call %s could not be placed: %s", call["id"], exc)
        await store.calls.advance(principal.project_id, "", CARRIER_REFUSED, call_id=call["id"])
        raise ApiError(502, error_body("carrier_error", str(exc))) from None
    logger.info("call %s placed as Twilio call %s (%s)", call["id"], placed.sid, placed.status)
    linked = await store.calls.link_carrier(call["id"], placed.sid, placed.status)
    return JSONResponse(linked or call, status_code=201)


@router.get(
    "",
    response_model=CallList,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="listCalls",
    summary="List phone calls, newest first (cursor paging)",
)
async def list_calls(
    request: Request,
    principal: CallerPrincipal,
    page: Annotated[PageQuery, Depends()],
    status: Annotated[CallStatus | None, Query(description="Only calls in this status.")] = None,
    direction: Annotated[CallDirection | None, Query(description="Only inbound or outbound calls.")] = None,
) -> JSONResponse:
    calls = await _store(request).calls.list(
        principal.project_id, page.request, status=status, direction=direction
    )
    return JSONResponse(list_body("calls", calls))


@router.get(
    "/{call_id}",
    response_model=Call,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="getCall",
    summary="Retrieve a phone call",
)
async def get_call(request: Request, principal: CallerPrincipal, call_id: CallId) -> JSONResponse:
    call = None
    if CALL_ID_PATTERN.fullmatch(call_id):
        call = await _store(request).calls.get(principal.project_id, call_id)
    if call is None:
        raise ApiError(404, {"detail": "Call not found", "code": "call_not_found"})
    return JSONResponse(call)


# --- validation -----------------------------------------------------------------------------------------
_ADDRESS_PROBLEM = "must be an E.164 number such as +14155550100, or a sip:/client: address"


def _is_address(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_ADDRESS_CHARS
        and (PHONE_NUMBER.match(value) is not None or value.startswith(("sip:", "client:")))
    )


def _call_fields(data: Any) -> tuple[str, str | None, str]:
    """``(to_number, from_number or None, agent_id)``, or a 422 listing every problem."""
    if not isinstance(data, dict):
        raise validation_failed([(("body",), "the body must be a JSON object", "model_type")])
    problems: list[tuple[tuple[str, ...], str, str]] = []
    if "to_number" not in data:
        problems.append((("body", "to_number"), "Field required", "missing"))
    elif not _is_address(data["to_number"]):
        problems.append((("body", "to_number"), f"to_number {_ADDRESS_PROBLEM}", "value_error"))
    from_number = data.get("from_number")
    if from_number is not None and not _is_address(from_number):
        problems.append((("body", "from_number"), f"from_number {_ADDRESS_PROBLEM}", "value_error"))
    agent_id = data.get("agent_id")
    if agent_id is None:
        problems.append(
            (("body", "agent_id"), "agent_id is required: voxgate calls out with a stored agent", "missing")
        )
    elif not isinstance(agent_id, str) or not 0 < len(agent_id) <= MAX_AGENT_ID_CHARS:
        problems.append((("body", "agent_id"), "agent_id must be an agent id string", "value_error"))
    if problems:
        raise validation_failed(problems)
    return data["to_number"], from_number or None, agent_id


def _store(request: Request) -> Store:
    store: Store | None = request.app.state.store
    if store is None:
        raise ApiError(503, error_body("unavailable", "The server is starting"), {"Retry-After": "1"})
    return store
