"""A small client for the realtime protocol, for tests: JSON text frames over a real WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxgate.audio.codecs import encode_audio
from voxgate.audio.resample import resample, to_int16

DEFAULT_TIMEOUT = 10.0
PLAYOUT_TYPES = frozenset({"reply.audio", "transcript.agent.delta"})


class ProtocolClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []
        """Every event received so far, in order."""
        self.close_reason: str | None = None
        """The server's close reason, once :meth:`wait_closed` saw the close."""
        self._cursor = 0

    @classmethod
    async def open(cls, url: str, *, headers: dict[str, str] | None = None) -> ProtocolClient:
        connection = await connect(url, additional_headers=headers or {}, max_size=None, open_timeout=10)
        return cls(connection)

    async def __aenter__(self) -> ProtocolClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    # --- sending -------------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def update(self, **session: Any) -> None:
        await self.send({"type": "session.update", "session": session})

    async def send_audio(
        self, audio: np.ndarray, *, rate: int = 16_000, encoding: str = "audio/pcm", chunk_ms: int = 50
    ) -> None:
        """Send float32 (or int16) audio at ``rate`` in the wire ``encoding``, in chunks, at once."""
        wire_rate = 24_000 if encoding == "audio/pcm" else 8_000
        samples = audio if audio.dtype == np.float32 else audio.astype(np.float32) / 32768
        pcm = to_int16(resample(samples.astype(np.float32), rate, wire_rate))
        step = wire_rate * chunk_ms // 1000
        for start in range(0, pcm.size, step):
            payload = base64.b64encode(encode_audio(encoding, pcm[start : start + step])).decode()
            await self.send({"type": "input.audio", "audio": payload})

    # --- receiving ----------------------------------------------------------------------------------
    async def recv(self, within: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), within)
        event = json.loads(raw)
        self.received.append(event)
        return event

    async def next_event(
        self, within: float = DEFAULT_TIMEOUT, *, skip: Iterable[str] = ()
    ) -> dict[str, Any]:
        """The next event not yet consumed, ignoring types in ``skip``."""
        skipped = set(skip)
        while True:
            if self._cursor < len(self.received):
                event = self.received[self._cursor]
                self._cursor += 1
            else:
                event = await self.recv(within)
                self._cursor += 1
            if event["type"] not in skipped:
                return event

    async def wait_for(self, kind: str, within: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Consume events until one of type ``kind`` (with matching ``fields``) arrives; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} within {within}s; got {self.types()[-15:]}")
            try:
                event = await self.next_event(remaining)
            except TimeoutError:
                raise TimeoutError(f"no {kind} within {within}s; got {self.types()[-15:]}") from None
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    async def expect_error(self, code: str, within: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        event = await self.next_event(within, skip=("reply.audio",))
        assert event["type"] == "session.error", f"expected session.error {code}, got {event}"
        assert event["code"] == code, event
        return event

    async def wait_closed(self, within: float = DEFAULT_TIMEOUT) -> int | None:
        """Drain events until the server closes; return the close code."""
        try:
            while True:
                await self.recv(within)
        except ConnectionClosed as exc:
            self.close_reason = exc.rcvd.reason if exc.rcvd is not None else None
            return exc.rcvd.code if exc.rcvd is not None else None

    def types(self, since: int = 0) -> list[str]:
        return [e["type"] for e in self.received[since:]]

    def non_audio_types(self, since: int = 0) -> list[str]:
        """Event types without the reply's playout stream (``reply.audio`` and the played words,
        ``transcript.agent.delta``, which go out with it)."""
        return [t for t in self.types(since) if t not in PLAYOUT_TYPES]

    def mark(self) -> int:
        """Position for :meth:`types` (everything consumed so far)."""
        return self._cursor


def audio_from_events(events: Iterable[dict[str, Any]], encoding: str = "audio/pcm") -> bytes:
    return b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "reply.audio")
