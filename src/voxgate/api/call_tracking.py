"""Call records driven by the Twilio endpoints (HOSTED.md §7): what the voice webhook answered and what
became of its media stream.

- :func:`record_answered_call` (the voice webhook): an inbound call is recorded ``dialing``; an outbound
  call placed by ``POST /v1/calls`` (its webhook URL carries ``call_id``) is linked to its ``CallSid``.
- :class:`CallTrackingSink` wraps a phone session's sink: ``session.ready`` makes the call ``active``
  with the session linked; the session's end (``session.ended``, or its sink closed) makes it ``ended``.
  It only touches calls of the project whose stream credential opened the session.

Bookkeeping never costs a call: a database error here is logged and the call goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from starlette.datastructures import MultiDict

from voxgate.conversation.dependencies import EventSink
from voxgate.protocol.events import ServerEvent, SessionEnded, SessionReady
from voxgate.store import Store
from voxgate.store.call_states import STREAM_ENDED, direction_of
from voxgate.store.calls import AnsweredCall
from voxgate.telephony.webhook import CALL_ID_PARAMETER

logger = logging.getLogger(__name__)

MAX_NUMBER_CHARS = 64
MAX_CALL_ID_CHARS = 64


async def record_answered_call(request: Request, project_id: str, agent_id: str, form: MultiDict) -> None:
    """Record (or link) the call the voice webhook is answering with ``agent_id``."""
    store: Store | None = request.app.state.store
    call_sid = form.get("CallSid") or ""
    if store is None or not call_sid:
        return
    answer = AnsweredCall(
        project_id=project_id,
        agent_id=agent_id,
        call_sid=call_sid,
        direction=direction_of(form.get("Direction")),
        from_number=(form.get("From") or "")[:MAX_NUMBER_CHARS] or None,
        to_number=(form.get("To") or "")[:MAX_NUMBER_CHARS] or None,
        call_id=(request.query_params.get(CALL_ID_PARAMETER) or "")[:MAX_CALL_ID_CHARS] or None,
    )
    try:
        call_id = await store.calls.answered(answer)
    except Exception:
        logger.exception("could not record Twilio call %s", call_sid[:64])
        return
    logger.info("Twilio call %s is call %s (%s)", call_sid[:64], call_id, answer.direction)


class CallTrackingSink:
    """A phone session's sink that moves its call record along with the session (see the module)."""

    def __init__(self, sink: EventSink, store: Store, project_id: str) -> None:
        self._sink = sink
        self._store = store
        self._project_id = project_id
        self._connected = False
        self._ended = False

    @property
    def _call_sid(self) -> str:
        return str(getattr(self._sink, "call_sid", "") or "")

    async def send(self, event: ServerEvent) -> None:
        await self._sink.send(event)
        if isinstance(event, SessionReady) and not self._connected:
            self._connected = True
            await self._record("connected", event.session_id)
        elif isinstance(event, SessionEnded):
            await self._ended_once()

    async def close(self, code: int, reason: str = "") -> None:
        await self._sink.close(code, reason)
        await self._ended_once()

    async def _ended_once(self) -> None:
        if not self._ended:
            self._ended = True
            await self._record("ended", None)

    async def _record(self, what: str, session_id: str | None) -> None:
        call_sid = self._call_sid
        if not call_sid:
            return
        try:
            if session_id is not None:
                call = await self._store.calls.stream_connected(self._project_id, call_sid, session_id)
            else:
                call = await self._store.calls.advance(self._project_id, call_sid, STREAM_ENDED)
        except Exception:
            logger.exception("could not record that Twilio call %s %s", call_sid[:64], what)
            return
        if call is not None:
            logger.info("call %s (%s) %s: %s", call["id"], call_sid[:64], what, call["status"])


def tracked_sink(state: Any, project_id: str, sink: EventSink) -> EventSink:
    """``sink`` wrapped in a :class:`CallTrackingSink` (unchanged while the store is not open)."""
    store: Store | None = getattr(state, "store", None)
    return sink if store is None else CallTrackingSink(sink, store, project_id)
