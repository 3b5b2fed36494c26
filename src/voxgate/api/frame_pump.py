"""The receive loop of every WebSocket transport: read frames and hand them on, one at a time, until the
client goes away or something else ends the connection.

A frame is read only while the session's input queue has room
(:class:`~voxgate.conversation.input_queue.SessionInputQueue`): the rest wait in the client's socket, so a
busy or blocked session bounds the backlog. :func:`pump_frames` says why it returned (:class:`PumpEnd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import WebSocket

from voxgate.conversation.input_queue import SessionInputQueue


class PumpEnd(enum.Enum):
    DISCONNECTED = "disconnected"
    """The client went away (or the socket failed)."""
    STOPPED = "stopped"
    """One of the ``until`` events was set."""
    INTERRUPTED = "interrupted"
    """The ``interrupt`` event was set; the caller decides what comes next (it may pump again)."""
    TIMED_OUT = "timed_out"
    """The ``deadline`` passed with no frame."""


def _no_queue() -> SessionInputQueue | None:
    return None


def _no_deadline() -> float | None:
    return None


async def pump_frames(
    websocket: WebSocket,
    deliver: Callable[[str | None], Awaitable[None]],
    *,
    until: Sequence[asyncio.Event],
    room: Callable[[], SessionInputQueue | None] = _no_queue,
    interrupt: asyncio.Event | None = None,
    deadline: Callable[[], float | None] = _no_deadline,
) -> PumpEnd:
    """Read frames and ``deliver`` each (its text; None for a binary frame) until the client goes away,
    an ``until`` event or ``interrupt`` is set, or ``deadline()`` (a time of the running loop, read before
    each frame; None: no deadline) passes. Before each read, wait for room in the queue ``room()`` names
    (None: nothing to wait for)."""
    loop = asyncio.get_running_loop()
    watchers: dict[asyncio.Future[Any], PumpEnd] = {
        asyncio.ensure_future(event.wait()): PumpEnd.STOPPED for event in until
    }
    if interrupt is not None:
        watchers[asyncio.ensure_future(interrupt.wait())] = PumpEnd.INTERRUPTED
    try:
        while True:
            if any(event.is_set() for event in until):
                return PumpEnd.STOPPED
            if interrupt is not None and interrupt.is_set():
                return PumpEnd.INTERRUPTED
            if (queue := room()) is not None:
                end = await _first(asyncio.ensure_future(queue.wait_for_room()), watchers, None)
                if end is not None:
                    return end
            due = deadline()
            timeout = None if due is None else max(0.0, due - loop.time())
            receive = asyncio.ensure_future(websocket.receive())
            if (end := await _first(receive, watchers, timeout)) is not None:
                return end
            try:
                message = receive.result()
            except Exception:
                return PumpEnd.DISCONNECTED
            if message["type"] == "websocket.disconnect":
                return PumpEnd.DISCONNECTED
            await deliver(message.get("text"))
    finally:
        for watcher in watchers:
            watcher.cancel()


async def _first(
    work: asyncio.Future[Any], watchers: dict[asyncio.Future[Any], PumpEnd], within: float | None
) -> PumpEnd | None:
    """None once ``work`` is done; else (it is cancelled) why the pump must end (``within`` seconds:
    :attr:`PumpEnd.TIMED_OUT`)."""
    done, _ = await asyncio.wait((work, *watchers), timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        return None
    work.cancel()
    with contextlib.suppress(BaseException):
        await work
    for watcher, end in watchers.items():
        if watcher in done:
            return end
    return PumpEnd.TIMED_OUT
