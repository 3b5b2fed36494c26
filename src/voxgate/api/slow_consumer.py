"""Clients that do not read what the server sends them (``/v1/ws``).

A send waits while the socket's write buffer is full, i.e. while the client is not reading. One send that
waits longer than ``VOXGATE_SLOW_CONSUMER_SECONDS`` marks the client a slow consumer: the session ends as if
the client had gone away (a resumable session stays resumable for the resume window), its slot is given
back at once, and the server closes the socket with code 1008 and reason ``slow_consumer``.

1008 (policy violation) because the client broke the protocol's contract to keep reading, like the other
policy closes (auth, expiry); 1011 would blame the server and 1013 ("try again later") invites an
immediate retry. The close frame waits behind the unread data: a client that starts reading again within
:data:`CLOSE_WAIT_SECONDS` sees it; after that the server stops waiting and drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import WebSocket

from voxgate.protocol.errors import CloseCode

logger = logging.getLogger(__name__)

SLOW_CONSUMER = "slow_consumer"
"""Close reason (and the error code name in logs and metrics)."""
SLOW_CONSUMER_CLOSE = CloseCode.POLICY_VIOLATION
CLOSE_WAIT_SECONDS = 10.0


class SlowConsumer(Exception):
    """A send waited longer than the limit for the client to read."""


async def send_text_within(websocket: WebSocket, payload: str, seconds: float) -> None:
    """Send one text frame; raise :class:`SlowConsumer` when it cannot go out within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await websocket.send_text(payload)
    except TimeoutError:
        raise SlowConsumer() from None


async def close_slow_consumer(websocket: WebSocket) -> None:
    """Close with 1008 ``slow_consumer``, waiting at most :data:`CLOSE_WAIT_SECONDS` for room to send it."""
    logger.warning("closing a realtime connection whose client does not read (%s)", SLOW_CONSUMER)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_WAIT_SECONDS):
            await websocket.close(code=SLOW_CONSUMER_CLOSE, reason=SLOW_CONSUMER)
