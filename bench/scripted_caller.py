"""A scripted caller for the realtime benchmarks: one ``/v1/ws`` session driven like a person on a mic.

From ``open()`` until ``end()`` a sender task streams ``input.audio`` every 50 ms at real-time pace on an
absolute schedule, as a microphone does: silence, except while a line is being said. ``say(line)`` queues
a line and returns its :class:`TurnRecord`; ``wait_reply(turn)`` waits for the agent's answer to it. A
line said while the agent speaks is a barge-in. ``end()`` sends ``session.end`` and checks the server
counted every second of audio that was sent; ``drop()`` just closes the socket.

Client-side measures per turn: user stopped speaking (the scheduled time of the line's last sample) ->
``input.speech.stopped``, ``transcript.user``, ``reply.started`` and the first ``reply.audio``; the
reply's audio length and its playout gaps (a client playing chunks as they arrive would have run dry for
that long). Encoded lines are shared between callers (:class:`EncodedLine`), so one process can drive
many sessions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

CHUNK_SECONDS = 0.05
WIRE_RATE = 24_000
CHUNK_SAMPLES = int(WIRE_RATE * CHUNK_SECONDS)
OUTPUT_BYTES_PER_MS = WIRE_RATE * 2 / 1000  # audio/pcm output: 24 kHz int16


def _frame(pcm: NDArray[np.int16]) -> str:
    data = base64.b64encode(pcm.astype("<i2").tobytes()).decode("ascii")
    return json.dumps({"type": "input.audio", "audio": data}, separators=(",", ":"))


SILENCE_FRAME = _frame(np.zeros(CHUNK_SAMPLES, np.int16))


@dataclass(frozen=True, slots=True)
class EncodedLine:
    """A line as ready-to-send ``input.audio`` frames (50 ms each; the last one padded with silence)."""

    text: str
    frames: tuple[str, ...]
    speech_seconds: float

    @classmethod
    def of(cls, text: str, pcm: NDArray[np.int16]) -> EncodedLine:
        padded = np.concatenate([pcm, np.zeros(-pcm.size % CHUNK_SAMPLES, np.int16)])
        frames = tuple(_frame(padded[i : i + CHUNK_SAMPLES]) for i in range(0, padded.size, CHUNK_SAMPLES))
        return cls(text, frames, pcm.size / WIRE_RATE)


@dataclass
class ReplyRecord:
    reply_id: str | None
    started_at: float
    first_audio_at: float | None = None
    done_at: float | None = None
    status: str | None = None
    text: str | None = None
    interrupted: bool = False
    audio_ms: float = 0.0
    chunks: int = 0
    playout_gap_ms: float = 0.0
    _play_until: float = 0.0

    def take_audio(self, now: float, milliseconds: float) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = now
            self._play_until = now
        elif now > self._play_until:
            self.playout_gap_ms += (now - self._play_until) * 1000
            self._play_until = now
        self._play_until += milliseconds / 1000
        self.audio_ms += milliseconds
        self.chunks += 1


@dataclass
class TurnRecord:
    line: str
    said_at: float
    """Monotonic time the line's first sample was (scheduled to be) spoken."""
    speech_end: float
    """Monotonic time the line's last sample was (scheduled to be) spoken: "the user stopped"."""
    first_reply_index: int
    speech_stopped_at: float | None = None
    transcript_at: float | None = None
    transcript: str | None = None
    reply: ReplyRecord | None = None
    """The agent's answer to the whole line: the first reply that started after the line ended."""
    cut_replies: list[ReplyRecord] = field(default_factory=list)
    """Replies that started while the line was still being spoken (the turn was ended at a pause)."""

    def after_speech_ms(self, moment: float | None) -> float | None:
        return None if moment is None else (moment - self.speech_end) * 1000

    @property
    def voice_to_voice_ms(self) -> float | None:
        return self.after_speech_ms(self.reply.first_audio_at if self.reply else None)

    @property
    def stopped_to_audio_ms(self) -> float | None:
        """``input.speech.stopped`` received -> first ``reply.audio`` received (the server's share)."""
        if self.reply is None or self.reply.first_audio_at is None or self.speech_stopped_at is None:
            return None
        return (self.reply.first_audio_at - self.speech_stopped_at) * 1000


@dataclass
class CallSummary:
    session_id: str | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    replies: list[ReplyRecord] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    sent_audio_seconds: float = 0.0
    server_audio_seconds: float | None = None
    ended: bool = False
    close_code: int | None = None
    max_send_lateness_ms: float = 0.0
    """How far the sender fell behind its real-time schedule (a busy client, not the server)."""

    @property
    def audio_accounted(self) -> bool:
        """The server counted every second of audio this caller sent (known after ``end()``)."""
        return self.server_audio_seconds is not None and (
            abs(self.server_audio_seconds - self.sent_audio_seconds) <= 0.002
        )


class CallerError(Exception):
    pass


class ScriptedCaller:
    def __init__(self, url: str, api_key: str, session: dict[str, Any] | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self.session_config = session or {}
        self.summary = CallSummary()
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._script: deque[str] = deque()
        self._speech_start_at: float | None = None
        self._current: ReplyRecord | None = None
        self._closed = False
        self._stopping = False
        self._frames_sent = 0
        self._stopped_at: list[float] = []
        self._transcripts: list[tuple[float, str]] = []

    # --- life cycle --------------------------------------------------------------------------------
    async def open(self, *, ready_timeout: float = 30.0) -> str:
        """Connect, configure, wait for ``session.ready`` (and a configured greeting), start the mic."""
        try:
            self._ws = await connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.api_key}"},
                max_size=None,
                open_timeout=ready_timeout,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise CallerError(f"cannot connect to {self.url}: {exc}") from exc
        self._receiver = asyncio.create_task(self._receive())
        with contextlib.suppress(ConnectionClosed):  # a rejection is read by the receiver
            await self._send_text(json.dumps({"type": "session.update", "session": self.session_config}))
        await self._wait(lambda: self.summary.session_id is not None, ready_timeout, "session.ready")
        if self.session_config.get("greeting"):
            await self._wait(
                lambda: bool(self.summary.replies) and self.summary.replies[0].done_at is not None,
                ready_timeout,
                "the greeting",
            )
        self._sender = asyncio.create_task(self._microphone())
        return self.summary.session_id or ""

    async def end(self, within: float = 10.0) -> CallSummary:
        """Stop the mic, send ``session.end``, wait for ``session.ended`` and the close."""
        await self._stop_sender()
        if self._ws is None:
            return self.summary
        if not self._closed:
            with contextlib.suppress(ConnectionClosed):
                await self._send_text('{"type":"session.end"}')
            with contextlib.suppress(CallerError):
                await self._wait(lambda: self._closed, within, "the close after session.end")
        await self._close()
        return self.summary

    async def drop(self) -> CallSummary:
        """Close the socket without ``session.end`` (the server keeps the session resumable)."""
        await self._stop_sender()
        await self._close()
        return self.summary

    # --- talking -----------------------------------------------------------------------------------
    def say(self, line: EncodedLine) -> TurnRecord:
        """Queue ``line`` on the mic right after the current 50 ms frame; returns its turn record."""
        if self._sender is None or self._sender.done():
            raise CallerError("the caller is not talking (open() first, or the connection is gone)")
        start = self._next_frame_time()
        self._script.extend(line.frames)
        # frames queued before this line (a previous line not yet fully sent) delay it
        start += (len(self._script) - len(line.frames)) * CHUNK_SECONDS
        turn = TurnRecord(line.text, start, start + line.speech_seconds, len(self.summary.replies))
        self.summary.turns.append(turn)
        return turn

    async def wait_reply(self, turn: TurnRecord, *, done: bool = True, within: float = 60.0) -> ReplyRecord:
        """The first reply that started after ``turn`` was said; with ``done``, once it has finished."""

        def ready() -> bool:
            reply = self._reply_for(turn)
            return reply is not None and (not done or reply.done_at is not None)

        await self._wait(ready, within, f"the reply to {turn.line!r}")
        reply = self._reply_for(turn)
        assert reply is not None
        return reply

    async def wait_audio(self, within: float = 30.0) -> ReplyRecord:
        """Wait until the agent is speaking (a reply in progress has sent audio)."""

        def speaking() -> bool:
            return self._current is not None and self._current.first_audio_at is not None

        await self._wait(speaking, within, "agent audio")
        assert self._current is not None
        return self._current

    async def pause(self, seconds: float) -> None:
        """Let the mic stream silence for ``seconds`` (events keep being received)."""
        await asyncio.sleep(seconds)

    @property
    def connected(self) -> bool:
        return not self._closed

    # --- internals ---------------------------------------------------------------------------------
    def _reply_for(self, turn: TurnRecord) -> ReplyRecord | None:
        if turn.reply is not None:
            return turn.reply
        for reply in self.summary.replies[turn.first_reply_index :]:
            if reply.started_at < turn.said_at:
                continue
            if reply.started_at < turn.speech_end:
                # A reply to part of the line (ended at a pause): not the answer to what the caller said.
                if all(reply is not cut for cut in turn.cut_replies):
                    turn.cut_replies.append(reply)
                continue
            turn.reply = reply
            stopped = [t for t in self._stopped_at if turn.said_at <= t <= reply.started_at]
            turn.speech_stopped_at = stopped[-1] if stopped else None
            heard = [(t, text) for t, text in self._transcripts if turn.said_at <= t <= reply.started_at]
            if heard:
                # several transcripts: the line was split into turns at a pause
                turn.transcript_at, turn.transcript = heard[-1][0], " + ".join(text for _, text in heard)
            return reply
        return None

    def _next_frame_time(self) -> float:
        if self._speech_start_at is None:
            return time.monotonic()
        return self._speech_start_at + self._frames_sent * CHUNK_SECONDS

    async def _microphone(self) -> None:
        self._speech_start_at = time.monotonic()
        start = self._speech_start_at
        try:
            while not self._stopping:
                release = start + (self._frames_sent + 1) * CHUNK_SECONDS
                delay = release - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if self._stopping:
                        break
                else:
                    self.summary.max_send_lateness_ms = max(self.summary.max_send_lateness_ms, -delay * 1000)
                frame = self._script.popleft() if self._script else SILENCE_FRAME
                self._frames_sent += 1  # before the await: say() schedules after this frame
                await self._send_text(frame)
                self.summary.sent_audio_seconds = round(self._frames_sent * CHUNK_SECONDS, 3)
        except ConnectionClosed:
            return

    async def _stop_sender(self) -> None:
        # Not cancelled: a frame is either wholly sent and counted or not sent at all.
        self._stopping = True
        if self._sender is not None:
            await self._sender

    async def _send_text(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send(text)

    async def _wait(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if self._closed:
                raise CallerError(f"connection closed ({self.summary.close_code}) while waiting for {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallerError(f"no {what} within {within:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                self._handle(json.loads(message), time.monotonic())
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            self.summary.close_code = self._ws.close_code
            self._changed.set()

    def _handle(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("type")
        summary = self.summary
        if kind == "reply.audio":
            reply = self._current
            if reply is not None:
                reply.take_audio(now, len(event.get("data", "")) * 3 / 4 / OUTPUT_BYTES_PER_MS)
        elif kind == "reply.started":
            self._current = ReplyRecord(event.get("reply_id"), now)
            summary.replies.append(self._current)
        elif kind == "transcript.agent":
            reply = self._find_reply(event.get("reply_id"))
            if reply is not None:
                reply.text = str(event.get("text", ""))
                reply.interrupted = bool(event.get("interrupted"))
        elif kind == "reply.done":
            reply = self._find_reply(event.get("reply_id"))
            if reply is not None:
                reply.done_at = now
                reply.status = str(event.get("status"))
            self._current = None
        elif kind == "input.speech.stopped":
            self._stopped_at.append(now)
        elif kind == "transcript.user":
            self._transcripts.append((now, str(event.get("text", ""))))
        elif kind == "session.ready":
            summary.session_id = event.get("session_id")
        elif kind == "session.ended":
            summary.ended = True
            summary.server_audio_seconds = event.get("audio_duration_seconds") or 0.0
        elif kind == "session.error":
            summary.errors.append(event)

    def _find_reply(self, reply_id: object) -> ReplyRecord | None:
        for reply in reversed(self.summary.replies):
            if reply.reply_id == reply_id:
                return reply
        return None

    async def _close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._receiver is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver
