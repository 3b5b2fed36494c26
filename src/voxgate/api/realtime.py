"""The realtime WebSocket: ``/v1/ws`` and the legacy aliases ``/v1/voice`` and ``/v1/realtime``.

This module only adapts the wire to the conversation engine: it authenticates the upgrade (an API key, a
one-time token or a resume token, see :mod:`voxgate.api.realtime_auth`), turns text frames into typed client
events (or protocol errors) for the :class:`~voxgate.conversation.session.Session`, and writes the
session's output events back as JSON text frames. No conversation logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket

from voxgate.api.connection import Admission, admit, count_refusal, finish_socket
from voxgate.api.draining import session_drain
from voxgate.api.frame_pump import pump_frames
from voxgate.api.locked_socket import LockedSocket
from voxgate.api.realtime_auth import RealtimeGrant, authenticate_realtime
from voxgate.api.revocation_watch import revocation_watch
from voxgate.api.session_dependencies import TransportProfile
from voxgate.config import Settings
from voxgate.conversation.dependencies import SinkClosed
from voxgate.conversation.notices import TransportClosed
from voxgate.history.service import session_recorder
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.protocol.events import (
    AnyClientEvent,
    ProtocolError,
    ServerEvent,
    parse_client_event,
    session_error,
)
from voxgate.protocol.frame_limits import nesting_refusal

logger = logging.getLogger(__name__)

router = APIRouter()

REALTIME_PATHS = ("/v1/ws", "/v1/voice", "/v1/realtime")
CLOSE_AT_CONNECT = CloseCode.POLICY_VIOLATION
"""Close code of a refusal at connect that the client may retry (``at_capacity``, PROTOCOL.md §11)."""
REALTIME_PROFILE = TransportProfile()
"""A ``/v1/ws`` client's playout is estimated from the audio sent; input runs at the configured burst."""


class WebSocketSink:
    """The session's events as JSON text frames on the connection's socket; :class:`SinkClosed` once the
    client is gone (or stalled, see :mod:`voxgate.api.locked_socket`)."""

    def __init__(self, socket: LockedSocket) -> None:
        self._socket = socket

    async def send(self, event: ServerEvent) -> None:
        if self._socket.closed or not await self._socket.deliver(event.to_json()):
            raise SinkClosed()

    async def close(self, code: int, reason: str = "") -> None:
        await self._socket.close(code, reason)


async def _reject(websocket: WebSocket, code: ErrorCode, message: str, close: CloseCode) -> None:
    """``session.error`` then the close, whose reason is the error's code (HOSTED.md §4)."""
    count_refusal(code)
    with contextlib.suppress(Exception):
        await websocket.send_text(session_error(code, message).to_json())
        await websocket.close(code=close, reason=code.value)


async def realtime_endpoint(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    drain = session_drain(websocket.app.state)
    if not drain.admitting:
        await _reject(
            websocket, ErrorCode.AT_CAPACITY, "this instance is shutting down; reconnect", CLOSE_AT_CONNECT
        )
        return
    try:
        identity = await authenticate_realtime(websocket, settings)
    except Exception:
        logger.exception("could not authenticate a realtime connection")
        await _reject(
            websocket,
            ErrorCode.INTERNAL_ERROR,
            "the server's database is unavailable; retry shortly",
            CloseCode.INTERNAL_ERROR,
        )
        return
    if isinstance(identity, ProtocolError):
        await _reject(websocket, identity.code, identity.message, identity.close or CLOSE_AT_CONNECT)
        return
    admission = admit(websocket.app.state, identity.project_id)
    if admission is None:
        await _reject(
            websocket,
            ErrorCode.AT_CAPACITY,
            f"this server is at capacity ({settings.max_sessions} sessions); retry shortly",
            CLOSE_AT_CONNECT,
        )
        return
    try:
        await _run_session(websocket, identity, admission)
    finally:
        admission.release()


async def _run_session(websocket: WebSocket, identity: RealtimeGrant, admission: Admission) -> None:
    """One admitted connection: its session runs until either side ends it. The slot is given back as
    soon as the session closes the socket (so a client that saw the close can connect again at once)."""
    state = websocket.app.state
    drain = session_drain(state)
    socket = LockedSocket(websocket, stall_seconds=state.settings.slow_consumer_seconds)
    socket.release_on_close(admission.slot.release)
    recorder = session_recorder(state, identity.project_id, identity.channel)  # session history
    sink = recorder.wrap_sink(WebSocketSink(socket))  # the recorder sees every event and the close
    session = admission.open_session(
        state,
        drain.track(sink),
        max_seconds=identity.max_session_seconds,
        profile=REALTIME_PROFILE,
        resume_only=identity.resume_only,
        turn_observer=recorder.turn,
    )
    unwatch = revocation_watch(state).watch(identity.key_id, session.push)  # a revoked key ends it
    session_task = asyncio.create_task(session.run(), name="session")
    session_over = asyncio.Event()
    session_task.add_done_callback(lambda _task: session_over.set())
    max_bytes = state.settings.max_ws_message_bytes

    async def deliver(text: str | None) -> None:
        item = frame_to_input(text, max_bytes)
        recorder.client_input(item)  # before the session handles (and trims) it
        session.push(item)

    try:
        await pump_frames(websocket, deliver, until=(session_over,), room=lambda: session.queue)
    finally:
        unwatch()
        session.push(TransportClosed())
        await session_task
        drain.release(sink)
        await recorder.finish()  # closes the record and the artifacts (bounded, never raises)
        admission.release()
        await finish_socket(socket)


def frame_to_input(text: str | None, max_bytes: int) -> AnyClientEvent | ProtocolError:
    """One WebSocket frame as a session input: a parsed client event, or the protocol error it is.
    ``text`` is None for a binary frame. Size is measured in characters (a lower bound of the bytes)."""
    if text is None:
        return ProtocolError(ErrorCode.INVALID_FORMAT, "binary frames are not supported; send JSON text")
    if len(text) > max_bytes:
        return ProtocolError(ErrorCode.INVALID_FORMAT, f"message larger than {max_bytes} bytes")
    if (refusal := nesting_refusal(text)) is not None:
        return ProtocolError(ErrorCode.INVALID_FORMAT, f"message refused: {refusal}")
    try:
        return parse_client_event(text)
    except ProtocolError as error:
        return error


for _path in REALTIME_PATHS:
    router.add_api_websocket_route(_path, realtime_endpoint)
