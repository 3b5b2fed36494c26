"""What every transport's connection does between its socket and its Session (``/v1/ws``, a Twilio
media stream): admission, metering, and the connection's end.

A connection that has proven who it is is *admitted* (:func:`admit`): it takes one of the instance's
session slots (``VOXGATE_MAX_SESSIONS``, :mod:`voxgate.api.session_slots`) and gets the meter of its
session (:class:`~voxgate.telemetry.session_meter.SessionMeter`), which sees every event before it goes out
(:class:`MeteredSink`) and is the session's telemetry. :meth:`Admission.open_session` builds the Session
for the transport's :class:`~voxgate.api.session_dependencies.TransportProfile`; :meth:`Admission.release`
gives everything back when the connection is over. A refusal is counted by its code
(:func:`count_refusal`); each transport says it on its own wire.

The other shared parts: the socket every transport writes to (:mod:`voxgate.api.locked_socket`), the
receive loop (:mod:`voxgate.api.frame_pump`) and the drain (:mod:`voxgate.api.draining`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from voxgate.api.locked_socket import LockedSocket
from voxgate.api.session_dependencies import TransportProfile, session_dependencies
from voxgate.api.session_slots import SessionSlot, session_slots
from voxgate.api.slow_consumer import SLOW_CONSUMER
from voxgate.conversation.dependencies import EventSink
from voxgate.conversation.session import Session
from voxgate.conversation.session_telemetry import TurnsAlsoTo
from voxgate.conversation.timings import TurnTimings
from voxgate.protocol.events import ServerEvent
from voxgate.telemetry.session_meter import SessionMeter, count_session_error

logger = logging.getLogger(__name__)


class MeteredSink:
    """A session's sink with each event shown to the connection's meter before it goes out."""

    def __init__(self, sink: EventSink, meter: SessionMeter) -> None:
        self._sink = sink
        self._meter = meter

    async def send(self, event: ServerEvent) -> None:
        self._meter.on_event(event)
        await self._sink.send(event)

    async def close(self, code: int, reason: str = "") -> None:
        await self._sink.close(code, reason)


class Admission:
    """What an admitted connection holds until it ends: its session slot and its meter."""

    def __init__(self, project_id: str, slot: SessionSlot) -> None:
        self.project_id = project_id
        self.slot = slot
        self.meter = SessionMeter(project_id)

    def open_session(
        self,
        state: Any,
        sink: EventSink,
        *,
        max_seconds: float,
        profile: TransportProfile,
        resume_only: str | None = None,
        facts: Mapping[str, str] | None = None,
        turn_observer: Callable[[TurnTimings], None] | None = None,
    ) -> Session:
        """The connection's Session, sending its (metered) events to ``sink``. ``facts``: what the transport
        knows of the session (channel, phone numbers; what pre-connect requests may send)."""
        deps = session_dependencies(
            state,
            self.project_id,
            max_seconds,
            profile=profile,
            telemetry=self.meter if turn_observer is None else TurnsAlsoTo(self.meter, turn_observer),
            resume_only=resume_only,
            facts=facts or {},
        )
        return Session(deps, MeteredSink(sink, self.meter))

    def release(self) -> None:
        """Idempotent: the meter counts the session as ended once; the slot is given back once."""
        try:
            self.meter.close()
        finally:
            self.slot.release()


def admit(state: Any, project_id: str) -> Admission | None:
    """A session slot and a meter for a connection of ``project_id``; None when the instance is full
    (``at_capacity``)."""
    slot = session_slots(state).acquire()
    return None if slot is None else Admission(project_id, slot)


def count_refusal(code: str) -> None:
    """A connection refused before its session exists (``unauthorized``, ``at_capacity``, ...)."""
    count_session_error(code)


async def finish_socket(socket: LockedSocket) -> None:
    """The connection is over: close its socket (1008 ``slow_consumer`` for a client that stopped
    reading, counted like an error of that code; else 1000 if still open)."""
    if socket.slow_consumer:
        count_session_error(SLOW_CONSUMER)
    await socket.finish()
