"""Twilio's status callbacks: ``POST /twilio/call-status[?call_id=<id>]`` (HOSTED.md §7).

``POST /v1/calls`` asks Twilio to report each call's progress here (``StatusCallback`` with the events
``initiated``, ``ringing``, ``answered``, ``completed``); a number's "call status changes" URL may point
here too, for inbound calls. The request is checked like the voice webhook (``X-Twilio-Signature``, see
:mod:`voxgate.api.twilio_requests`). The form's ``CallStatus`` moves the call record named by
``call_id`` (a call placed through the API) or by its ``CallSid`` (store/call_states.py decides how);
an unknown call or status changes nothing. The answer is always an empty 204 for a signed request:
Twilio does not retry a status callback, and what it reports is never an error of its own.

This route is excluded from the OpenAPI schema: it is Twilio's, not the Voice Agent API.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from voxgate.api.rest_errors import ApiError, error_body
from voxgate.api.twilio_requests import authorise_twilio_request, read_form
from voxgate.config import Settings
from voxgate.store import Store
from voxgate.store.call_states import TWILIO_STATUSES
from voxgate.telephony.webhook import CALL_ID_PARAMETER, CALL_STATUS_PATH

logger = logging.getLogger(__name__)

router = APIRouter(tags=["twilio"])

MAX_ID_CHARS = 64


@router.post(CALL_STATUS_PATH, include_in_schema=False)
async def call_status(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    store: Store | None = request.app.state.store
    if store is None:  # pragma: no cover - only during start-up
        raise ApiError(503, error_body("unavailable", "the server is starting"))
    form = await read_form(request)
    authorise_twilio_request(request, settings, form, "status callback")
    call_sid = (form.get("CallSid") or "")[:MAX_ID_CHARS]
    status = form.get("CallStatus") or ""
    call_id = (request.query_params.get(CALL_ID_PARAMETER) or "")[:MAX_ID_CHARS] or None
    if status not in TWILIO_STATUSES or not (call_sid or call_id):
        logger.info("ignored a Twilio status callback with status %r", status[:32])
        return Response(status_code=204)
    call = await store.calls.advance(None, call_sid, status, call_id=call_id)
    if call is None:
        logger.info("Twilio status callback for an unknown call (%s, %s)", call_sid, call_id)
    else:
        logger.info(
            "call %s (%s): Twilio reports %s; status %s", call["id"], call_sid, status, call["status"]
        )
    return Response(status_code=204)
