"""Deadlines for connections before any session exists: the HTTP request head and the WebSocket frames.

uvicorn's HTTP/1.1 protocol (h11) times out an idle keep-alive connection, but waits forever for the first
request of a new connection and for the rest of a request head that arrives a byte at a time (slowloris):
such sockets were never closed. :class:`RequestHeadDeadlineProtocol` closes a connection that has not
sent a complete request head within ``VOXGATE_HTTP_IDLE_TIMEOUT_SECONDS`` (uvicorn's ``timeout_keep_alive``,
which this server sets to the same value). Once a WebSocket handshake has arrived the socket belongs to
the realtime endpoint: its configuration deadline (``VOXGATE_CONFIGURE_TIMEOUT_SECONDS``, in the session),
the duration cap, uvicorn's WebSocket pings (dead peers) and the slow-consumer limit take over.

:func:`uvicorn_connection_options` gives ``voxgate serve`` these settings, plus the WebSocket frame limit
(a frame over twice ``VOXGATE_MAX_WS_MESSAGE_BYTES`` closes the socket with 1009 before it is buffered;
frames up to that are refused one by one with ``invalid_format``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from voxgate.config import Settings

WS_FRAME_ALLOWANCE = 2
"""uvicorn's WebSocket size limit, in multiples of the accepted frame size (the accepted size counts
characters, the transport counts bytes)."""


class RequestHeadDeadlineProtocol(H11Protocol):
    """h11 with a deadline for every request head, counted from the moment the server waits for one."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _follow_head(self) -> None:
        if not self._waiting_for_head():
            self._cancel_head_deadline()
        elif self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.timeout_keep_alive, self._head_overdue)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_overdue(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head():
            self.logger.info("closing a connection that sent no complete request head in time")
            self.transport.close()


def uvicorn_connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for connection limits (see the module docstring)."""
    return {
        "http": RequestHeadDeadlineProtocol,
        "timeout_keep_alive": settings.http_idle_timeout_seconds,
        "ws_max_size": settings.max_ws_message_bytes * WS_FRAME_ALLOWANCE,
    }
