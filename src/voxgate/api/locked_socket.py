"""One accepted WebSocket as every transport writes to it: one writer at a time, silent once the socket is
gone, and a client that stops reading found out (:mod:`voxgate.api.slow_consumer`).

A send that waits more than ``stall_seconds`` for the client to read marks the client a slow consumer:
the socket counts as closed from then on, :attr:`LockedSocket.stalled` is set (a receive loop stops on it)
and the callbacks given to :meth:`LockedSocket.release_on_close` run at once (the connection's session slot
is given back). :meth:`LockedSocket.finish` then closes the socket with 1008 ``slow_consumer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from voxgate.api.slow_consumer import SlowConsumer, close_slow_consumer, send_text_within
from voxgate.protocol.errors import CloseCode


class LockedSocket:
    def __init__(self, websocket: WebSocket, *, stall_seconds: float) -> None:
        self._websocket = websocket
        self._lock = asyncio.Lock()
        self._stall_seconds = stall_seconds
        self._on_close: list[Callable[[], None]] = []
        self.closed = False
        """No more frames go out: the server closed the socket, a send failed or the client stalled."""
        self.stalled = asyncio.Event()
        """Set when the client is found not reading (a slow consumer)."""

    @property
    def slow_consumer(self) -> bool:
        return self.stalled.is_set()

    def release_on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, when the server closes the socket or the client stalls (not when the
        client goes away: the connection's handler releases what it holds then)."""
        self._on_close.append(callback)

    async def deliver(self, text: str) -> bool:
        """Send one text frame; False when it did not go out (the socket is gone, or the client stalled)."""
        if self.closed:
            return False
        async with self._lock:
            try:
                await send_text_within(self._websocket, text, self._stall_seconds)
            except SlowConsumer:
                self.closed = True
                self.stalled.set()
                self._release()
                return False
            except Exception:  # disconnects surface as several exception types
                self.closed = True
                return False
        return True

    async def send_text(self, text: str) -> None:
        """:meth:`deliver`, for a writer that does not need to know (the Twilio bridge)."""
        await self.deliver(text)

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket (idempotent); the close frame waits behind a send in progress."""
        if self.closed:
            return
        self.closed = True
        self._release()
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._websocket.close(code=code, reason=reason)

    async def finish(self) -> None:
        """The connection's handler is done: close a slow consumer's socket with 1008 ``slow_consumer``,
        or a socket still open with 1000."""
        if self.slow_consumer:
            await close_slow_consumer(self._websocket)
        elif self._websocket.client_state is WebSocketState.CONNECTED:
            await self.close(CloseCode.NORMAL)

    def _release(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()
