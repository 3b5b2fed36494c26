"""Graceful drain of the realtime connections of one instance (SIGTERM, a rolling deploy).

``SessionDrain`` tracks every open ``/v1/ws`` connection through the event sink it wraps, and every phone
call's media stream (``/twilio/media``). ``drain()``:

1. stops admitting sessions (``admitting`` is false: new connections get ``at_capacity``, the Twilio
   voice webhook answers 503 so that no new call is answered here, and ``/healthz`` answers 503, so a
   load balancer stops sending traffic here);
2. lets every reply in flight finish: a connection is closed as soon as it is between replies (it
   sent ``reply.done``, or never started one), with close code 1012 *service restart*. The session
   checkpoints and detaches exactly as on any disconnect, so the client resumes it with
   ``session.resume`` on another instance within the grace window;
3. lets every phone call go on: a call cannot be resumed elsewhere (Twilio's stream just ends), so it
   is not closed between replies but continues, turn after turn, until the caller hangs up;
4. when ``drain_seconds`` minus a short reserve have passed, closes the remaining connections too:
   their replies are cut at what the listener heard (the same trimming as a barge-in), checkpointed
   and detached; and sets ``calls_ending``, on which each call still going ends itself through the
   bridge's hang-up path (``session.end``: the reply is trimmed to what the caller heard, the session
   ends for good), closing its stream with 1000, which hangs up;
5. returns once every connection's and call's handler has finished (or the deadline passed).

A media stream that connects during the drain belongs to a call that was already answered (by this
instance's webhook before the drain, or by another instance's): it is admitted and treated like the
calls in progress until ``calls_ending`` is set; after that ``track_call`` refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from voxgate.protocol.events import ServerEvent

logger = logging.getLogger(__name__)

SERVICE_RESTART = 1012
"""WebSocket close code for "the server is restarting; reconnect" (RFC 6455 registry)."""
CLOSE_RESERVE_FRACTION = 0.25
"""Share of the drain time kept for checkpointing and closing after replies were given their chance."""
MAX_CLOSE_RESERVE_SECONDS = 3.0


class TrackedConnection:
    """An event sink (see conversation.session.EventSink) that watches its own traffic: it knows
    whether a reply is in flight and can be closed by the drain."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.between_replies = asyncio.Event()
        self.between_replies.set()
        self.finished = asyncio.Event()

    async def send(self, event: ServerEvent) -> None:
        kind = getattr(event, "type", None)
        if kind == "reply.started":
            self.between_replies.clear()
        await self._sink.send(event)
        if kind == "reply.done":
            self.between_replies.set()

    async def close(self, code: int, reason: str = "") -> None:
        await self._sink.close(code, reason)

    @property
    def sink(self) -> Any:
        return self._sink


class TrackedCall:
    """A phone call's media stream. The drain never closes it: the stream's handler ends the call itself
    once ``SessionDrain.calls_ending`` is set, and releases it when its handler is done."""

    def __init__(self) -> None:
        self.finished = asyncio.Event()


class SessionDrain:
    def __init__(self, drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self.admitting = True
        self.calls_ending = asyncio.Event()
        """Set during the drain when the phone calls still going must end: they all ended by themselves,
        or the deadline came. Media streams wait on it."""
        self._connections: dict[int, TrackedConnection] = {}
        self._calls: dict[int, TrackedCall] = {}
        self._no_calls = asyncio.Event()
        self._no_calls.set()
        self._drained = asyncio.Event()

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def calls(self) -> int:
        return len(self._calls)

    def track(self, sink: Any) -> TrackedConnection:
        """Wrap a connection's event sink; pass the result to its Session."""
        connection = TrackedConnection(sink)
        self._connections[id(sink)] = connection
        return connection

    def track_call(self, stream: Any) -> TrackedCall | None:
        """Register a phone call's media stream (its WebSocket; release it with the same object). None
        once calls must end (``calls_ending``): the stream is refused."""
        if self.calls_ending.is_set():
            return None
        call = TrackedCall()
        self._calls[id(stream)] = call
        self._no_calls.clear()
        return call

    def release(self, key: Any) -> None:
        """The connection's (or call's) handler is done: call from its ``finally`` with the sink given to
        ``track`` (or the stream given to ``track_call``)."""
        tracked: TrackedConnection | TrackedCall | None = self._connections.pop(id(key), None)
        if tracked is None:
            tracked = self._calls.pop(id(key), None)
            if not self._calls:
                self._no_calls.set()
        if tracked is not None:
            tracked.finished.set()

    async def drain(self) -> None:
        """Close every tracked connection (see the module docstring); idempotent."""
        if not self.admitting:
            await self._drained.wait()
            return
        self.admitting = False
        started = time.monotonic()
        reserve = min(MAX_CLOSE_RESERVE_SECONDS, self.drain_seconds * CLOSE_RESERVE_FRACTION)
        reply_deadline = started + max(0.0, self.drain_seconds - reserve)
        final_deadline = started + self.drain_seconds
        connections = list(self._connections.values())
        logger.info(
            "draining %d realtime connection(s) and %d phone call(s) within %.1f s",
            len(connections),
            len(self._calls),
            self.drain_seconds,
        )
        try:
            await asyncio.gather(
                *(self._close_between_replies(c, reply_deadline) for c in connections),
                self._let_calls_end(reply_deadline),
            )
            pending: list[TrackedConnection | TrackedCall] = [*connections, *self._calls.values()]
            waiting = [c.finished.wait() for c in pending]
            if waiting:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(_loop_time(final_deadline)):
                        await asyncio.gather(*waiting)
            left = sum(1 for c in pending if not c.finished.is_set())
            logger.info(
                "drain finished in %.2f s (%d connection(s) or call(s) still closing)",
                time.monotonic() - started,
                left,
            )
        finally:
            self.calls_ending.set()
            self._drained.set()

    async def _close_between_replies(self, connection: TrackedConnection, deadline: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_time(deadline)):
                await connection.between_replies.wait()
        await connection.close(SERVICE_RESTART, "server restarting: resume the session")

    async def _let_calls_end(self, deadline: float) -> None:
        """Wait until no phone call is left (streams that connect meanwhile count too) or the deadline;
        then tell the calls still going to end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_time(deadline)):
                await self._no_calls.wait()
        if self._calls:
            logger.info("ending %d phone call(s) at the drain deadline", len(self._calls))
        self.calls_ending.set()


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


def session_drain(state: Any) -> SessionDrain:
    """The app's drain (``app.state.drain``), created on first use."""
    drain = getattr(state, "drain", None)
    if drain is None:
        drain = SessionDrain(state.settings.drain_seconds)
        state.drain = drain
    return drain  # type: ignore[no-any-return]
