"""A simulated Twilio Media Streams peer that follows TWILIO.md, for tests.

What it does, like Twilio on a bidirectional ``<Connect><Stream>``:

- sends ``connected``, then ``start`` (with ``customParameters``), then a ``media`` frame of 20 ms
  (160 bytes of μ-law) every 20 ms of wall clock for as long as the call lasts: the caller's speech
  when the test makes it say something (:meth:`say`), line silence otherwise; ``sequenceNumber``,
  ``chunk`` and ``timestamp`` are strings counting as Twilio counts them;
- plays the agent's ``media`` in order, in real time, after a fixed ``playout_latency`` (network and
  jitter buffer), and echoes each ``mark`` when playback reaches it;
- on ``clear`` drops everything not yet played and echoes every pending mark at once (as Twilio does;
  those echoes prove nothing was heard);
- sends ``dtmf`` and ``stop`` on request.

The μ-law codec here is CPython's ``audioop`` (the reference G.711 implementation), independent of
voxgate's own codec.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FRAME_MS = 20
SAMPLE_RATE = 8000
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000
MULAW_SILENCE = b"\xff"
DEFAULT_TIMEOUT = 15.0


def mulaw_from_float(audio: np.ndarray) -> bytes:
    """Float32 samples in [-1, 1] at 8 kHz as G.711 μ-law bytes."""
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    return audioop.lin2ulaw(pcm, 2)


def float_from_mulaw(data: bytes) -> np.ndarray:
    pcm = np.frombuffer(audioop.ulaw2lin(data, 2), dtype="<i2")
    return pcm.astype(np.float32) / 32768


@dataclass
class MarkRecord:
    name: str
    position_ms: float
    """Milliseconds of agent audio received before this mark (peer-wide)."""
    outcome: str = "pending"
    """``played`` (playback reached it) or ``cleared`` (echoed because a clear discarded its audio)."""


@dataclass
class ClearRecord:
    received_ms: float
    """Agent audio received when the clear arrived."""
    played_ms: float
    """Agent audio whose mark was echoed as played when the clear arrived."""


@dataclass
class _Speech:
    data: bytes
    done: asyncio.Future[None]
    offset: int = 0


@dataclass
class SimulatedTwilio:
    connection: ClientConnection
    playout_latency: float = 0.0
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    outbound: list[dict[str, Any]] = field(default_factory=list)
    """Every frame the bridge sent, in order."""
    agent_audio: bytearray = field(default_factory=bytearray)
    marks: list[MarkRecord] = field(default_factory=list)
    clears: list[ClearRecord] = field(default_factory=list)
    played_ms: float = 0.0
    close_code: int | None = None
    bad_outbound: list[str] = field(default_factory=list)
    """Outbound frames that break the Media Streams rules (wrong streamSid, binary, unknown event...)."""

    def __post_init__(self) -> None:
        self._sequence = 0
        self._chunk = 0
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._speech: list[_Speech] = []
        self._play_end: float | None = None
        self._pending: dict[str, tuple[asyncio.TimerHandle, MarkRecord]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()

    @classmethod
    async def dial(cls, url: str, **kwargs: Any) -> SimulatedTwilio:
        connection = await connect(url, max_size=None, open_timeout=10)
        return cls(connection, **kwargs)

    # --- sending ----------------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        payload = message if isinstance(message, str | bytes) else json.dumps(message)
        async with self._send_lock:
            with contextlib.suppress(ConnectionClosed):
                await self.connection.send(payload)

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def start(self, custom_parameters: dict[str, str], *, stream_audio: bool = True) -> None:
        """``connected`` and ``start``; then the receiver, and (unless told not to) the microphone."""
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(self.start_message(custom_parameters))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._receive()))
        if stream_audio:
            self._tasks.append(loop.create_task(self._microphone()))

    def start_message(self, custom_parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            },
        }

    def media_message(self, payload: bytes) -> dict[str, Any]:
        self._chunk += 1
        return {
            "event": "media",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * FRAME_MS),
                "payload": base64.b64encode(payload).decode("ascii"),
            },
        }

    def say(self, audio: np.ndarray) -> asyncio.Future[None]:
        """Queue float32 8 kHz audio as the caller's speech; the future resolves once it has been sent."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._speech.append(_Speech(mulaw_from_float(audio), done))
        return done

    async def press(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        """Twilio's ``stop`` (the caller hung up); the microphone stops first."""
        await self._stop_microphone()
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def hang_up_abruptly(self) -> None:
        """Close the socket without ``stop`` (a dropped connection)."""
        await self._stop_microphone()
        await self.connection.close()

    async def _stop_microphone(self) -> None:
        if len(self._tasks) > 1:
            microphone = self._tasks.pop()
            microphone.cancel()
            await asyncio.gather(microphone, return_exceptions=True)

    def _next_frame(self) -> bytes:
        frame = b""
        while self._speech and len(frame) < FRAME_BYTES:
            speech = self._speech[0]
            take = speech.data[speech.offset : speech.offset + FRAME_BYTES - len(frame)]
            speech.offset += len(take)
            frame += take
            if speech.offset >= len(speech.data):
                self._speech.pop(0)
                if not speech.done.done():
                    speech.done.set_result(None)
        return frame + MULAW_SILENCE * (FRAME_BYTES - len(frame))

    async def _microphone(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        sent = 0
        while not self.closed.is_set():
            await self.send(self.media_message(self._next_frame()))
            sent += 1
            # A phone line delivers one frame every 20 ms: keep the real-time schedule.
            await asyncio.sleep(max(0.0, began + sent * FRAME_MS / 1000 - loop.time()))

    # --- receiving ------------------------------------------------------------------------------------
    async def _receive(self) -> None:
        try:
            async for raw in self.connection:
                if isinstance(raw, bytes):
                    self.bad_outbound.append("binary frame")
                    continue
                message = json.loads(raw)
                self.outbound.append(message)
                await self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.closed.set()
            for handle, _record in self._pending.values():
                handle.cancel()
            for speech in self._speech:
                if not speech.done.done():
                    speech.done.cancel()
            async with self._changed:
                self._changed.notify_all()

    async def _on_message(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if message.get("streamSid") != self.stream_sid:
            self.bad_outbound.append(f"{event} with streamSid {message.get('streamSid')!r}")
        if event == "media":
            self._on_media(base64.b64decode(message["media"]["payload"]))
        elif event == "mark":
            self._on_mark(message["mark"]["name"])
        elif event == "clear":
            await self._on_clear()
        else:
            self.bad_outbound.append(f"unknown event {event!r}")
        async with self._changed:
            self._changed.notify_all()

    @property
    def received_ms(self) -> float:
        return len(self.agent_audio) / (SAMPLE_RATE / 1000)

    def _on_media(self, payload: bytes) -> None:
        now = asyncio.get_running_loop().time()
        self.agent_audio.extend(payload)
        duration = len(payload) / SAMPLE_RATE
        if self._play_end is None or self._play_end < now + self.playout_latency:
            start = now + self.playout_latency
        else:
            start = self._play_end
        self._play_end = start + duration

    def _on_mark(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        record = MarkRecord(name, self.received_ms)
        self.marks.append(record)
        when = max(self._play_end or 0.0, loop.time())
        handle = loop.call_at(when, self._played, name)
        self._pending[name] = (handle, record)

    def _played(self, name: str) -> None:
        _handle, record = self._pending.pop(name)
        record.outcome = "played"
        self.played_ms = max(self.played_ms, record.position_ms)
        self._spawn(self._echo(name))

    async def _on_clear(self) -> None:
        self.clears.append(ClearRecord(self.received_ms, self.played_ms))
        self._play_end = None
        pending, self._pending = self._pending, {}
        for name, (handle, record) in pending.items():
            handle.cancel()
            record.outcome = "cleared"
            await self._echo(name)

    async def _echo(self, name: str) -> None:
        await self.send(
            {
                "event": "mark",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )
        async with self._changed:
            self._changed.notify_all()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.append(task)

    # --- waiting --------------------------------------------------------------------------------------
    async def wait_until(self, predicate: Callable[[], bool], within: float = DEFAULT_TIMEOUT) -> None:
        """Wait (on the peer's own state changes) until ``predicate()`` holds; TimeoutError otherwise."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate() or self.closed.is_set())
        if not predicate():
            raise AssertionError("the bridge closed the stream before the condition held")

    def media_frames(self) -> list[bytes]:
        return [base64.b64decode(m["media"]["payload"]) for m in self.outbound if m.get("event") == "media"]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.connection.close()
