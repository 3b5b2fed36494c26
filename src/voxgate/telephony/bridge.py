"""One phone call bridged to one conversation :class:`~voxgate.conversation.session.Session`.

:class:`MediaStreamBridge` receives Twilio Media Streams frames (TWILIO.md §2) and turns them into
session inputs; as the session's :class:`~voxgate.conversation.session.EventSink` it turns the session's
events into Twilio frames (TWILIO.md §3, §4.3). It runs the same engine as ``/v1/ws`` in-process and
behaves like an external bridge speaking the public protocol would:

- ``start``: the one-time credential in ``customParameters`` is redeemed (by the ``open_session``
  callback); the session is configured with ``{"agent_id": ...}`` from the same parameters.
- ``media``: the base64 μ-law payload goes unchanged into ``input.audio`` (the session uses
  ``audio/pcmu``); frames before ``session.ready`` are buffered (bounded) and replayed in order.
- ``reply.audio``: forwarded unchanged as a ``media`` frame, followed by a ``mark``; the echoed marks
  report playback to the session (:class:`~voxgate.conversation.session.PlayoutAcknowledged`), so an
  interrupted reply keeps only what the caller heard.
- ``input.speech.started`` (barge-in) and ``reply.done`` ``interrupted``: ``clear``, so Twilio drops the
  agent audio it still holds; marks pending at that moment are forgotten (their echoes prove nothing).
- ``dtmf``: digits collected by :class:`~voxgate.telephony.keypad.KeypadEntry`, given to the agent as
  user text, then a reply is requested.
- ``tool.call`` (a client-side tool): there is no client on a phone call, so the bridge answers at once
  with an error result and the agent recovers in words. Phone agents should use HTTP tools.
- ``stop`` or the socket closing: ``session.end``; the session ends (not resumable) and frees everything.
  (Before ``session.ready``, where ``session.end`` is not allowed, it is sent on ``session.ready``.)
- :meth:`MediaStreamBridge.end_call` (the instance is draining and its deadline came): the same
  ``session.end``, after which the session closes the stream with 1000, which hangs up.
- The session ending on its own (duration cap, unknown agent, fatal error) closes the Twilio socket,
  which ends ``<Connect>`` and so the call.

Bad frames (not JSON, wrong shapes, unknown events, media before ``start``, oversized payloads, binary
frames) are logged and dropped; the call goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from voxgate.conversation.dependencies import EventSink
from voxgate.conversation.notices import PlayoutAcknowledged
from voxgate.conversation.session import Session
from voxgate.protocol.errors import CloseCode
from voxgate.protocol.events import (
    ConversationMessage,
    InputAudio,
    InputSpeechStarted,
    ReplyAudio,
    ReplyCreate,
    ReplyDone,
    ServerEvent,
    SessionEnd,
    SessionEnded,
    SessionErrorEvent,
    SessionReady,
    SessionUpdate,
    ToolCall,
    ToolResult,
    TranscriptAgent,
    TranscriptUser,
)
from voxgate.telephony.keypad import DEFAULT_PAUSE_SECONDS, KeypadEntry, keypad_text
from voxgate.telephony.media_streams import (
    MULAW_BYTES_PER_MS,
    DtmfMessage,
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
    StreamFrameError,
    UnknownStreamEvent,
    clear_frame,
    is_mulaw_8k_mono,
    mark_frame,
    media_frame,
    parse_inbound,
)
from voxgate.telephony.playback_marks import PlaybackMarks

logger = logging.getLogger(__name__)

AGENT_ID_PARAMETER = "agent_id"
TOKEN_PARAMETER = "token"
CALLER_NUMBER_PARAMETER = "caller_number"
CALLED_NUMBER_PARAMETER = "called_number"
"""The call's ``From`` and ``To``, passed by the voice webhook for the session record (optional)."""
MAX_EARLY_FRAMES = 500
"""Caller frames buffered before ``session.ready`` (10 s of 20 ms frames); older ones are dropped."""
END_TIMEOUT_SECONDS = 5.0
"""How long a hang-up waits for the session to end cleanly before cancelling it."""
LOGGED_REJECTIONS = 20
"""Rejected frames logged one by one per call; after that only every 100th is logged."""
CLIENT_TOOL_UNAVAILABLE = json.dumps(
    {"error": "This tool cannot run during a phone call. Tell the caller you cannot do that right now."}
)
INBOUND_TRACKS = frozenset({"inbound", "inbound_track"})


class StreamTransport(Protocol):
    """The Twilio side: one WebSocket. Both methods must not raise once the socket is gone."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int) -> None: ...


SessionOpener = Callable[[str, EventSink], Awaitable[Session | None]]
"""``open_session(one_time_token, sink)``: redeem the stream's credential and build a Session that sends
its events to ``sink``; None refuses the stream."""


class MediaStreamBridge:
    def __init__(
        self,
        transport: StreamTransport,
        open_session: SessionOpener,
        *,
        max_frame_chars: int,
        keypad_pause_seconds: float = DEFAULT_PAUSE_SECONDS,
    ) -> None:
        self._transport = transport
        self._open_session = open_session
        self._max_frame_chars = max_frame_chars
        self.session: Session | None = None
        self.stream_sid = ""
        self.call_sid = ""
        self.session_id: str | None = None
        self.caller_number: str | None = None
        self.called_number: str | None = None
        self.ended = asyncio.Event()
        """Set when the call is over for the bridge: the stream was refused or the session ended."""
        self.rejected_frames = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = False
        self._end_requested = False
        self._early_audio: deque[str] = deque(maxlen=MAX_EARLY_FRAMES)
        self._early_keypad: list[str] = []
        self._marks = PlaybackMarks()
        self._keypad = KeypadEntry(self._on_keypad_entry, pause_seconds=keypad_pause_seconds)

    @property
    def started(self) -> bool:
        """A ``start`` was handled (the stream was accepted or refused)."""
        return self.session is not None or self.ended.is_set()

    @property
    def _live(self) -> bool:
        return self.session is not None and self._task is not None and not self._task.done()

    # --- Twilio -> session ------------------------------------------------------------------------------
    async def receive(self, text: str | None) -> None:
        """Handle one frame from Twilio (``None`` for a binary frame). Never raises for bad input."""
        if text is None:
            self._reject("binary frame (Media Streams frames are JSON text)")
            return
        if len(text) > self._max_frame_chars:
            self._reject(f"frame of {len(text)} characters exceeds the limit of {self._max_frame_chars}")
            return
        try:
            message = parse_inbound(text)
        except UnknownStreamEvent as exc:
            self._reject(str(exc), level=logging.INFO)
            return
        except StreamFrameError as exc:
            self._reject(str(exc))
            return
        if isinstance(message, MediaMessage):
            self._on_media(message)
        elif isinstance(message, MarkMessage):
            self._on_mark(message)
        elif isinstance(message, StartMessage):
            await self._on_start(message)
        elif isinstance(message, DtmfMessage):
            self._on_dtmf(message)
        elif isinstance(message, StopMessage):
            logger.info("call %s: Twilio stopped the stream", self.call_sid or "?")
            self._request_end()
        else:
            logger.debug("media stream connected (protocol %s %s)", message.protocol, message.version)

    async def _on_start(self, message: StartMessage) -> None:
        if self.started:
            self._reject("a second start message")
            return
        details = message.start
        self.stream_sid = details.stream_sid
        self.call_sid = details.call_sid
        if not is_mulaw_8k_mono(details.media_format):
            logger.warning("call %s: refused a stream that is not μ-law 8 kHz mono", self.call_sid)
            await self._refuse()
            return
        agent_id = details.custom_parameters.get(AGENT_ID_PARAMETER, "")
        token = details.custom_parameters.get(TOKEN_PARAMETER, "")
        self.caller_number = details.custom_parameters.get(CALLER_NUMBER_PARAMETER) or None
        self.called_number = details.custom_parameters.get(CALLED_NUMBER_PARAMETER) or None
        if not agent_id or not token:
            logger.warning("call %s: refused a stream without agent_id and token parameters", self.call_sid)
            await self._refuse()
            return
        session = await self._open_session(token, self)
        if session is None:
            await self._refuse()
            return
        self.session = session
        session.push(SessionUpdate(session={AGENT_ID_PARAMETER: agent_id}))
        self._task = asyncio.get_running_loop().create_task(session.run(), name=f"call-{self.call_sid}")
        self._task.add_done_callback(lambda _task: self.ended.set())
        logger.info("call %s: stream %s started for agent %s", self.call_sid, self.stream_sid, agent_id)

    def _on_media(self, message: MediaMessage) -> None:
        if self.session is None:
            self._reject("media before start")
            return
        if message.media.track not in INBOUND_TRACKS or not self._live:
            return
        if self._ready:
            self.session.push(InputAudio(audio=message.media.payload))
        else:
            self._early_audio.append(message.media.payload)

    def _on_mark(self, message: MarkMessage) -> None:
        position = self._marks.echoed(message.mark.name)
        if position is None:
            logger.debug(
                "call %s: mark %r proves nothing (cleared or unknown)", self.call_sid, message.mark.name
            )
            return
        if self.session is not None and self._live:
            self.session.push(PlayoutAcknowledged(position.reply_id, position.played_ms))

    def _on_dtmf(self, message: DtmfMessage) -> None:
        if not self._live:
            self._reject("dtmf before start or after the session ended")
            return
        self._keypad.press(message.dtmf.digit)

    def _on_keypad_entry(self, digits: str) -> None:
        if not self._ready:
            self._early_keypad.append(digits)
            return
        if self.session is None or not self._live:
            return
        logger.info("call %s: keypad entry of %d keys", self.call_sid, len(digits))
        self.session.push(ConversationMessage(role="user", content=keypad_text(digits)))
        self.session.push(ReplyCreate())

    def _reject(self, reason: str, *, level: int = logging.WARNING) -> None:
        self.rejected_frames += 1
        count = self.rejected_frames
        if count <= LOGGED_REJECTIONS or count % 100 == 0:
            logger.log(level, "call %s: ignored a frame (#%d): %s", self.call_sid or "?", count, reason)

    async def _refuse(self) -> None:
        self.ended.set()
        await self._transport.close(CloseCode.POLICY_VIOLATION)

    # --- ending -----------------------------------------------------------------------------------------
    def end_call(self) -> None:
        """End the call from the server's side: the session ends for good exactly as on a hang-up
        (``session.end``: a reply in flight is trimmed to what the caller heard, the checkpoint is ended),
        then the stream is closed with 1000, which ends ``<Connect>`` and so the call. A stream that has
        no session (yet) is simply over."""
        if self._live:
            self._request_end()
        else:
            self.ended.set()

    def _request_end(self) -> None:
        if self.session is not None and self._live and not self._end_requested:
            self._end_requested = True
            self._keypad.cancel()
            if self._ready:  # else session.end is not allowed yet: _on_ready sends it
                self.session.push(SessionEnd())

    async def finish(self) -> None:
        """The Twilio socket is gone (or the call is over): end the session cleanly and wait for it."""
        self._keypad.cancel()
        self._request_end()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), END_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("call %s: the session did not end in time; cancelling it", self.call_sid)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.ended.set()
        await self._transport.close(CloseCode.NORMAL)

    # --- session -> Twilio (EventSink) -------------------------------------------------------------------
    async def send(self, event: ServerEvent) -> None:
        if isinstance(event, ReplyAudio):
            await self._play(event)
        elif isinstance(event, InputSpeechStarted):
            if self.session is None or self.session.config.input.turn_detection.interrupt_response:
                await self._clear()
        elif isinstance(event, ReplyDone):
            if event.status == "interrupted":
                await self._clear()
        elif isinstance(event, SessionReady):
            self._on_ready(event)
        elif isinstance(event, ToolCall):
            self._decline_tool(event)
        elif isinstance(event, SessionErrorEvent):
            logger.warning("call %s: session error %s: %s", self.call_sid, event.code, event.message)
        elif isinstance(event, TranscriptUser):
            logger.debug("call %s: caller said %r", self.call_sid, event.text)
        elif isinstance(event, TranscriptAgent):
            logger.debug(
                "call %s: agent said %r (interrupted=%s)", self.call_sid, event.text, event.interrupted
            )
        elif isinstance(event, SessionEnded):
            logger.info(
                "call %s: session %s ended after %.1f s",
                self.call_sid,
                self.session_id,
                event.session_duration_seconds,
            )

    async def close(self, code: int, reason: str = "") -> None:
        await self._transport.close(code)

    def _on_ready(self, event: SessionReady) -> None:
        self._ready = True
        self.session_id = event.session_id
        assert self.session is not None
        if self._end_requested:  # the call ended while the session was being configured
            self._early_audio.clear()
            self._early_keypad.clear()
            self.session.push(SessionEnd())
            return
        while self._early_audio:
            self.session.push(InputAudio(audio=self._early_audio.popleft()))
        early_keypad, self._early_keypad = self._early_keypad, []
        for digits in early_keypad:
            self._on_keypad_entry(digits)

    async def _play(self, event: ReplyAudio) -> None:
        try:
            audio_ms = len(base64.b64decode(event.data, validate=True)) / MULAW_BYTES_PER_MS
        except (binascii.Error, ValueError):  # pragma: no cover - the engine encodes its own audio
            audio_ms = 0.0
        # The mark is registered before the audio goes out: while audio is in flight a mark is pending,
        # so a barge-in at any moment knows there is something to clear.
        name = self._marks.after_audio(event.reply_id, audio_ms)
        await self._transport.send_text(media_frame(self.stream_sid, event.data))
        await self._transport.send_text(mark_frame(self.stream_sid, name))

    async def _clear(self) -> None:
        if self._marks.cleared():
            await self._transport.send_text(clear_frame(self.stream_sid))

    def _decline_tool(self, event: ToolCall) -> None:
        logger.warning(
            "call %s: the agent called client-side tool %r, which cannot run on a phone call; "
            "answering with an error (give phone agents HTTP tools)",
            self.call_sid,
            event.name,
        )
        if self.session is not None:
            self.session.push(
                ToolResult(call_id=event.call_id, result=CLIENT_TOOL_UNAVAILABLE, is_error=True)
            )
