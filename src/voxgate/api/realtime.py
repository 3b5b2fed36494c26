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
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from voxgate import observability
from voxgate.api.draining import session_drain
from voxgate.api.realtime_auth import RealtimeGrant, authenticate_realtime, resume_token_signer
from voxgate.api.revocation_watch import revocation_watch
from voxgate.api.session_slots import SessionSlot, session_slots
from voxgate.api.slow_consumer import SLOW_CONSUMER, SlowConsumer, close_slow_consumer, send_text_within
from voxgate.config import Settings
from voxgate.conversation.dependencies import SessionDependencies, SinkClosed
from voxgate.conversation.http_tools import HttpToolRunner
from voxgate.conversation.notices import TransportClosed
from voxgate.conversation.session import Session
from voxgate.history.service import session_recorder
from voxgate.outbound.policy import OutboundPolicy
from voxgate.protocol.config import LLMEndpoint, SessionConfig
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.protocol.events import (
    AnyClientEvent,
    ProtocolError,
    ServerEvent,
    parse_client_event,
    session_error,
)
from voxgate.protocol.frame_limits import nesting_refusal
from voxgate.speech.base import LanguageModel, SpeechStack
from voxgate.store.checkpoints import CheckpointStore, MemoryCheckpointStore

logger = logging.getLogger(__name__)

router = APIRouter()

REALTIME_PATHS = ("/v1/ws", "/v1/voice", "/v1/realtime")
CLOSE_AT_CONNECT = CloseCode.POLICY_VIOLATION
"""Close code of a refusal at connect that the client may retry (``at_capacity``, PROTOCOL.md §11)."""


class WebSocketSink:
    """Serialises events onto one WebSocket (one writer at a time). A send that waits more than
    ``stall_seconds`` for the client to read marks it a slow consumer (:mod:`voxgate.api.slow_consumer`)."""

    def __init__(
        self,
        websocket: WebSocket,
        on_event: Callable[[ServerEvent], None] | None = None,
        on_close: Callable[[], None] | None = None,
        *,
        stall_seconds: float = 10.0,
    ) -> None:
        """``on_close`` runs once, before the close frame is sent (the session is over by then)."""
        self._websocket = websocket
        self._lock = asyncio.Lock()
        self._on_event = on_event
        self._on_close = on_close
        self._stall_seconds = stall_seconds
        self.closed = False
        self.slow_consumer = False

    async def send(self, event: ServerEvent) -> None:
        if self.closed:
            raise SinkClosed()
        if self._on_event is not None:
            self._on_event(event)
        payload = event.to_json()
        async with self._lock:
            try:
                await send_text_within(self._websocket, payload, self._stall_seconds)
            except SlowConsumer as exc:
                self.slow_consumer = self.closed = True
                self._release()
                raise SinkClosed() from exc
            except Exception as exc:  # disconnects surface as several exception types
                self.closed = True
                raise SinkClosed() from exc

    def _release(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self._release()
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._websocket.close(code=code, reason=reason)


def checkpoint_store(state: Any, settings: Settings) -> CheckpointStore:
    store = getattr(state, "checkpoints", None)
    if store is None:
        store = MemoryCheckpointStore(settings.resume_grace_seconds)
        state.checkpoints = store
    return store  # type: ignore[no-any-return]


def http_tool_runner(state: Any, settings: Settings) -> HttpToolRunner:
    runner = getattr(state, "http_tools", None)
    if runner is None:
        runner = HttpToolRunner(settings.http_tools_allowed_hosts)
        state.http_tools = runner
    return runner  # type: ignore[no-any-return]


def _byo_llm_builder(settings: Settings) -> Callable[[LLMEndpoint], LanguageModel]:
    """Builds an agent's bring-your-own LLM client under the server's outbound-URL policy."""
    policy = OutboundPolicy.allowing(settings.http_tools_allowed_hosts)

    def build(endpoint: LLMEndpoint) -> LanguageModel:
        from voxgate.speech.llm_openai import OpenAILLM

        return OpenAILLM.for_endpoint(endpoint.base_url, endpoint.model, endpoint.api_key, policy=policy)

    return build


async def _reject(websocket: WebSocket, code: ErrorCode, message: str, close: CloseCode) -> None:
    """``session.error`` then the close, whose reason is the error's code (HOSTED.md §4)."""
    observability.count_session_error(code)
    with contextlib.suppress(Exception):
        await websocket.send_text(session_error(code, message).to_json())
        await websocket.close(code=close, reason=code.value)


def session_dependencies(
    websocket: WebSocket, project_id: str, max_seconds: float, *, resume_only: str | None = None
) -> SessionDependencies:
    """What a Session needs on this server, for one connection of ``project_id`` (also the Twilio bridge)."""
    state = websocket.app.state
    settings: Settings = state.settings

    async def speech() -> SpeechStack:
        loader = state.speech
        if loader is None:
            raise RuntimeError("no speech stack is configured on this server")
        return await loader.get()  # type: ignore[no-any-return]

    async def load_agent(agent_id: str) -> SessionConfig | None:
        return await state.store.agents.load_for_session(project_id, agent_id)  # type: ignore[no-any-return]

    return SessionDependencies(
        settings=settings,
        speech=speech,
        load_agent=load_agent,
        checkpoints=checkpoint_store(state, settings),
        project_id=project_id,
        max_duration_seconds=max_seconds,
        http_tools=http_tool_runner(state, settings),
        build_llm=_byo_llm_builder(settings),
        resume_tokens=resume_token_signer(state, settings),
        resume_only=resume_only,
    )


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
    slot = session_slots(websocket.app.state).acquire()
    if slot is None:
        await _reject(
            websocket,
            ErrorCode.AT_CAPACITY,
            f"this server is at capacity ({settings.max_sessions} sessions); retry shortly",
            CLOSE_AT_CONNECT,
        )
        return
    try:
        await _run_session(websocket, identity, slot)
    finally:
        slot.release()


async def _run_session(websocket: WebSocket, identity: RealtimeGrant, slot: SessionSlot) -> None:
    """One admitted connection: its session runs until either side ends it. The slot is given back as
    soon as the session closes the socket (so a client that saw the close can connect again at once)."""
    state = websocket.app.state
    drain = session_drain(state)
    meter = observability.SessionMeter(identity.project_id)
    sink = WebSocketSink(
        websocket,
        on_event=meter.on_event,
        on_close=slot.release,
        stall_seconds=state.settings.slow_consumer_seconds,
    )
    deps = session_dependencies(
        websocket, identity.project_id, identity.max_session_seconds, resume_only=identity.resume_only
    )
    recorder = session_recorder(state, identity.project_id, identity.channel)  # [history]
    recorded = recorder.wrap_sink(sink)  # [history] the recorder sees every event and the close
    session = Session(deps, drain.track(recorded))
    unwatch = revocation_watch(state).watch(identity.key_id, session.push)
    session_task = asyncio.create_task(session.run(), name="session")
    try:
        await _pump(
            websocket, session, session_task, state.settings.max_ws_message_bytes, recorder.client_input
        )
    finally:
        unwatch()
        session.push(TransportClosed())
        await session_task
        drain.release(recorded)
        meter.close()
        await recorder.finish()  # [history] closes the record and the artifacts (bounded, never raises)
        if sink.slow_consumer:
            observability.count_session_error(SLOW_CONSUMER)
            await close_slow_consumer(websocket)
        elif websocket.client_state is WebSocketState.CONNECTED and not sink.closed:
            with contextlib.suppress(Exception):
                await websocket.close(code=CloseCode.NORMAL)


async def _pump(
    websocket: WebSocket,
    session: Session,
    session_task: asyncio.Task[None],
    max_bytes: int,
    observe: Callable[[object], None],
) -> None:
    """Read frames until the client goes away or the session ends. A frame is read only while the session's
    queue has room (the rest wait in the client's socket), so a busy or blocked session bounds the backlog."""
    while not session_task.done():
        room = asyncio.ensure_future(session.queue.wait_for_room())
        await asyncio.wait((room, session_task), return_when=asyncio.FIRST_COMPLETED)
        if not room.done():
            room.cancel()
            return
        receive = asyncio.ensure_future(websocket.receive())
        done, _ = await asyncio.wait((receive, session_task), return_when=asyncio.FIRST_COMPLETED)
        if receive not in done:
            receive.cancel()
            with contextlib.suppress(BaseException):
                await receive
            return
        try:
            message = receive.result()
        except Exception:
            return
        if message["type"] == "websocket.disconnect":
            return
        item = frame_to_input(message.get("text"), max_bytes)
        observe(item)  # [history] before the session handles (and trims) it
        session.push(item)


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
