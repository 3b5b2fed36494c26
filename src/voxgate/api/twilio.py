"""Twilio endpoints: the voice webhook (TwiML) and the Media Streams WebSocket (TWILIO.md).

``POST /twilio/voice?agent_id=<id>``
    Twilio's voice webhook for a number (or an outbound call). When ``VOXGATE_TWILIO_AUTH_TOKEN`` is set
    the request must carry a valid ``X-Twilio-Signature`` for the public URL (``VOXGATE_PUBLIC_BASE_URL``)
    and, when ``VOXGATE_TWILIO_ACCOUNT_SID`` is set, come from that account; otherwise 403. Without an auth
    token the webhook is OPEN: anyone who knows an agent id can start a session with that agent (logged
    loudly). The agent is looked up across projects (agent ids are unique); the answer is
    ``<Connect><Stream>`` to the media WebSocket with two ``<Parameter>`` children: ``agent_id`` and
    ``token``, a one-time credential of the agent's project minted like ``GET /v1/token``. No API key
    ever appears in a URL or in TwiML.

``WS /twilio/media``
    The bidirectional Media Streams socket. The credential arrives in ``start.customParameters``; an
    invalid, expired or reused one closes the socket (1008), which ends the call. A stream that sends no
    ``start`` within :data:`START_TIMEOUT_SECONDS` is closed too. Everything after ``start`` is
    :class:`~voxgate.telephony.bridge.MediaStreamBridge`. A call is admitted, metered and read like a
    ``/v1/ws`` connection (:mod:`voxgate.api.connection`): it takes a session slot; its meter of the
    credential's project counts active, started and ended sessions, error codes, and lists its turns in
    ``/metrics/turns``; a refused credential counts as ``unauthorized`` and a full server as
    ``at_capacity``. Frames are read only while the call's session has room for them, and a Twilio side
    that stops reading for ``VOXGATE_SLOW_CONSUMER_SECONDS`` is closed with 1008 ``slow_consumer``, which
    ends the call.

Draining (SIGTERM, :mod:`voxgate.api.draining`): the webhook refuses new calls with 503 (Twilio then
requests the number's fallback URL, or plays its application-error message), the way ``/v1/ws`` refuses
new sessions; a phone call cannot be resumed elsewhere, so calls in progress go on until the caller hangs
up, and only at the drain deadline are ended through the bridge's hang-up path
(:meth:`~voxgate.telephony.bridge.MediaStreamBridge.end_call`). A media stream that connects during the
drain belongs to a call already answered, and is admitted until the calls must end; then it is closed
(1008), which ends that call.

This module adapts HTTP/WebSocket to the bridge only; no conversation logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response, WebSocket
from starlette.datastructures import MultiDict

from voxgate.api.call_tracking import record_answered_call, tracked_sink
from voxgate.api.connection import Admission, admit, count_refusal, finish_socket
from voxgate.api.draining import session_drain
from voxgate.api.frame_pump import PumpEnd, pump_frames
from voxgate.api.locked_socket import LockedSocket
from voxgate.api.rest_errors import ApiError, error_body
from voxgate.api.session_dependencies import TransportProfile
from voxgate.config import Settings
from voxgate.conversation.dependencies import EventSink
from voxgate.conversation.input_queue import SessionInputQueue
from voxgate.conversation.session import Session
from voxgate.history.recorder import PHONE, SessionRecorder
from voxgate.history.service import NullRecorder, session_recorder
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.store import Store
from voxgate.telephony.bridge import (
    AGENT_ID_PARAMETER,
    CALLED_NUMBER_PARAMETER,
    CALLER_NUMBER_PARAMETER,
    MAX_EARLY_FRAMES,
    TOKEN_PARAMETER,
    MediaStreamBridge,
    SessionOpener,
)
from voxgate.telephony.phone_agent import bound_agent_loader, phone_agent_loader
from voxgate.telephony.webhook import (
    MEDIA_PATH,
    VOICE_PATH,
    connect_stream_twiml,
    public_url,
    signature_is_valid,
    stream_url,
)

logger = logging.getLogger(__name__)

router = APIRouter(tags=["twilio"])

STREAM_TOKEN_SECONDS = 60
"""Redemption window of the one-time stream credential (Twilio connects within a second or two)."""
START_TIMEOUT_SECONDS = 10.0
MAX_AGENT_ID_CHARS = 256
TWIML_MEDIA_TYPE = "text/xml"
EARLY_AUDIO_SECONDS = MAX_EARLY_FRAMES * 0.020
"""Caller audio the bridge may replay at once on ``session.ready`` (20 ms frames it buffered itself):
the input-rate burst of a phone session is at least this, so the replay is never dropped."""
PHONE_CALL_PROFILE = TransportProfile(
    acknowledged_playout=True,
    min_input_rate_burst_seconds=EARLY_AUDIO_SECONDS,
    agent_loader=phone_agent_loader,
)
"""A call's playout is what Twilio's marks acknowledge; its agents speak μ-law both ways."""


@router.post(VOICE_PATH, include_in_schema=False)
async def voice_webhook(request: Request, agent_id: str | None = None) -> Response:
    settings: Settings = request.app.state.settings
    store: Store | None = request.app.state.store
    if store is None:  # pragma: no cover - only during start-up
        raise ApiError(503, error_body("UNAVAILABLE", "the server is starting"))
    form = MultiDict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    if not session_drain(request.app.state).admitting:
        logger.warning("refused Twilio call %s: this instance is shutting down", form.get("CallSid"))
        raise ApiError(503, error_body("UNAVAILABLE", "this instance is shutting down; call again"))
    _authorise_webhook(request, settings, form)
    if not agent_id or len(agent_id) > MAX_AGENT_ID_CHARS:
        raise ApiError(
            422, error_body("VALIDATION_ERROR", "the agent_id query parameter is required (?agent_id=...)")
        )
    project_id = await store.agents.project_of(agent_id)
    if project_id is None:
        logger.warning("Twilio webhook for unknown agent %r (call %s)", agent_id[:64], form.get("CallSid"))
        raise ApiError(
            404, {"detail": "Agent not found", "code": "AGENT_NOT_FOUND", "message": "Agent not found"}
        )
    call_sid = form.get("CallSid")
    if call_sid and not await store.answered_calls.first_answer(call_sid[:64]):
        logger.warning("refused a replayed Twilio webhook: call %s was already answered", call_sid[:64])
        raise ApiError(409, error_body("conflict", "this call was already answered"))
    await record_answered_call(request, project_id, agent_id, form)
    minted = await store.tokens.mint(
        project_id,
        expires_in_seconds=STREAM_TOKEN_SECONDS,
        max_session_duration_seconds=settings.max_session_duration_seconds,
        purpose="phone_stream",
        agent_id=agent_id,
    )
    base = settings.public_base_url or str(request.base_url)
    parameters = {AGENT_ID_PARAMETER: agent_id, TOKEN_PARAMETER: minted.token}
    for name, field in ((CALLER_NUMBER_PARAMETER, "From"), (CALLED_NUMBER_PARAMETER, "To")):
        if number := (form.get(field) or "")[:64]:
            parameters[name] = number
    twiml = connect_stream_twiml(stream_url(base), parameters)
    logger.info(
        "Twilio call %s from %s answered with agent %s", form.get("CallSid"), form.get("From"), agent_id
    )
    return Response(content=twiml, media_type=TWIML_MEDIA_TYPE)


def _authorise_webhook(request: Request, settings: Settings, form: MultiDict) -> None:
    """403 unless the request is signed by Twilio (when an auth token is configured)."""
    if not settings.twilio_auth_token:
        logger.warning(
            "UNAUTHENTICATED Twilio webhook accepted: VOXGATE_TWILIO_AUTH_TOKEN is not set, so anyone who "
            "knows an agent id can open a session with it. Set it to check X-Twilio-Signature."
        )
        return
    url = public_url(str(request.url), settings.public_base_url)
    signature = request.headers.get("x-twilio-signature")
    settings_header = request.headers.get("x-twilio-webhooks-signature-settings")
    if not signature_is_valid(settings.twilio_auth_token, url, form, signature, settings_header):
        logger.warning("refused a Twilio webhook with a missing or invalid X-Twilio-Signature (url %s)", url)
        raise ApiError(403, error_body("FORBIDDEN", "invalid or missing X-Twilio-Signature"))
    if settings.twilio_account_sid and form.get("AccountSid") != settings.twilio_account_sid:
        logger.warning("refused a Twilio webhook from another account")
        raise ApiError(403, error_body("FORBIDDEN", "the request comes from another Twilio account"))


@dataclass(frozen=True, slots=True)
class CallAdmission:
    """What an accepted stream holds until it ends: its admission (slot, meter) and its history recorder."""

    admission: Admission
    recorder: SessionRecorder | NullRecorder

    async def release(self) -> None:
        await self.recorder.finish()  # closes the record and the artifacts (bounded, never raises)
        self.admission.release()


def _session_opener(
    websocket: WebSocket, socket: LockedSocket, on_admitted: Callable[[CallAdmission], None]
) -> SessionOpener:
    """Redeems the stream credential, admits the call (a session slot and its meter, handed to
    ``on_admitted`` for release when the stream ends) and builds the call's Session."""
    state = websocket.app.state
    settings: Settings = state.settings

    async def open_session(token: str, sink: EventSink) -> Session | None:
        store: Store | None = state.store
        grant = await store.tokens.redeem(token, "phone_stream") if store is not None else None
        if grant is None:
            count_refusal(ErrorCode.UNAUTHORIZED)
            logger.warning("refused a Twilio media stream: invalid, expired or already used stream token")
            return None
        admission = admit(state, grant.project_id)
        if admission is None:
            count_refusal(ErrorCode.AT_CAPACITY)
            logger.warning("refused a Twilio media stream: at capacity (%d sessions)", settings.max_sessions)
            return None
        caller, called = getattr(sink, "caller_number", None), getattr(sink, "called_number", None)
        recorder = session_recorder(
            state, grant.project_id, PHONE, caller_number=caller, called_number=called
        )
        on_admitted(CallAdmission(admission, recorder))
        socket.release_on_close(admission.slot.release)
        limit = min(settings.max_session_duration_seconds, grant.max_session_duration_seconds)
        profile = PHONE_CALL_PROFILE
        if grant.agent_id is not None:  # the stream token opens its own agent only
            agent_id = grant.agent_id
            profile = replace(
                profile, agent_loader=lambda load: phone_agent_loader(bound_agent_loader(agent_id, load))
            )
        facts = {"channel": PHONE, "caller_number": caller or "", "called_number": called or ""}
        sink = tracked_sink(state, grant.project_id, sink)  # the call record follows the session
        session = admission.open_session(
            state,
            recorder.wrap_sink(sink),
            max_seconds=float(limit),
            profile=profile,
            facts=facts,
            turn_observer=recorder.turn,
        )
        recorder.observe_pushes(session)  # the bridge pushes the caller's events itself
        return session

    return open_session


@router.websocket(MEDIA_PATH)
async def media_stream(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    drain = session_drain(websocket.app.state)
    if drain.track_call(websocket) is None:
        count_refusal(ErrorCode.AT_CAPACITY)
        logger.warning("refused a Twilio media stream: this instance is shutting down")
        with contextlib.suppress(Exception):
            await websocket.close(code=CloseCode.POLICY_VIOLATION)
        return
    socket = LockedSocket(websocket, stall_seconds=settings.slow_consumer_seconds)
    admitted: list[CallAdmission] = []
    opener = _session_opener(websocket, socket, admitted.append)
    bridge = MediaStreamBridge(socket, opener, max_frame_chars=settings.max_ws_message_bytes)
    try:
        await _pump(websocket, socket, bridge, drain.calls_ending)
    finally:
        try:
            await bridge.finish()  # the session has ended (or was cancelled) when this returns
        finally:
            for admission in admitted:
                await admission.release()
            await finish_socket(socket)
            drain.release(websocket)


async def _pump(
    websocket: WebSocket, socket: LockedSocket, bridge: MediaStreamBridge, must_end: asyncio.Event
) -> None:
    """Feed frames to the bridge until Twilio goes away or stops reading, the call ends, or no ``start``
    came in time. When ``must_end`` is set (the drain's deadline), the bridge ends the call and the frames
    that still come in are fed to it until it has."""
    start_deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS

    def deadline() -> float | None:
        return None if bridge.started else start_deadline

    def room() -> SessionInputQueue | None:
        return bridge.session.queue if bridge.session is not None else None

    until = (bridge.ended, socket.stalled)
    end = await pump_frames(
        websocket, bridge.receive, until=until, room=room, interrupt=must_end, deadline=deadline
    )
    if end is PumpEnd.INTERRUPTED:
        logger.info("call %s: ending the call: this instance is shutting down", bridge.call_sid or "?")
        bridge.end_call()
        end = await pump_frames(websocket, bridge.receive, until=until, room=room, deadline=deadline)
    if end is PumpEnd.TIMED_OUT and not bridge.ended.is_set():
        logger.warning("closing a Twilio media stream that sent no start within %s s", START_TIMEOUT_SECONDS)
        await socket.close(CloseCode.POLICY_VIOLATION)
