"""Phone call records (HOSTED.md §7), scoped by project.

A record is created when a call is placed (``POST /v1/calls``, ``outbound``) or answered by the voice
webhook (``inbound``; an outbound call placed elsewhere, e.g. by ``voxgate call``, is recorded there too,
as ``outbound``). It is linked to Twilio's ``CallSid`` and, once its media stream has a session, to that
session. Its status moves by the pure rules of :mod:`voxgate.store.call_states`; every change of status
writes the webhook delivery it announces (``call.connected``, ``call.ended``, ``call.failed``) in the
same transaction (``store.webhook_outbox``).

A call of another project behaves exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.store.call_states import (
    ACTIVE,
    CALL_EVENT_OF_STATUS,
    DIALING,
    FINAL_STATUSES,
    OUTBOUND,
    STREAM_CONNECTED,
    TWILIO_STATUSES,
    next_status,
)
from voxgate.store.paging import Page, PageRequest, paginate
from voxgate.store.tables import CallRow, utc_now
from voxgate.store.timestamps import format_timestamp
from voxgate.store.webhook_outbox import RetryPolicy, enqueue_event

CALL_ID_PREFIX = "call_"
MAX_CALL_SID_CHARS = 64


def new_call_id() -> str:
    return CALL_ID_PREFIX + uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    """What the voice webhook knows of a call it answered."""

    project_id: str
    agent_id: str
    call_sid: str
    direction: str
    from_number: str | None
    to_number: str | None
    call_id: str | None = None
    """The record ``POST /v1/calls`` created, when the webhook URL names it."""


class CallRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], retry: RetryPolicy) -> None:
        self._sessions = sessions
        self.retry = retry

    # --- writing ------------------------------------------------------------------------------------------
    async def place(self, project_id: str, agent_id: str, from_number: str, to_number: str) -> dict[str, Any]:
        """A new outbound call, ``dialing``, before the carrier is asked to place it."""
        now = utc_now()
        row = CallRow(
            id=new_call_id(),
            project_id=project_id,
            agent_id=agent_id,
            status=DIALING,
            direction=OUTBOUND,
            from_number=from_number,
            to_number=to_number,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions() as db, db.begin():
            db.add(row)
        return call_item(row)

    async def link_carrier(self, call_id: str, call_sid: str, carrier_status: str) -> dict[str, Any] | None:
        """The carrier accepted the call: remember its ``CallSid`` (unless the webhook already did)."""
        async with self._sessions() as db, db.begin():
            row = await db.scalar(select(CallRow).where(CallRow.id == call_id).with_for_update())
            if row is None:
                return None
            if row.twilio_call_sid is None:
                row.twilio_call_sid = call_sid[:MAX_CALL_SID_CHARS]
            if row.carrier_status is None:
                row.carrier_status = carrier_status[:32]
            row.updated_at = utc_now()
            return call_item(row)

    async def answered(self, answer: AnsweredCall) -> str | None:
        """Record a call the voice webhook answered; returns its id. The call placed by ``POST /v1/calls``
        that ``answer.call_id`` names (in the same project) is linked to the ``CallSid``; a ``CallSid``
        already recorded is left as it is; anything else is a new ``dialing`` record."""
        call_sid = answer.call_sid[:MAX_CALL_SID_CHARS]
        now = utc_now()
        try:
            async with self._sessions() as db, db.begin():
                existing = await db.scalar(select(CallRow).where(CallRow.twilio_call_sid == call_sid))
                if existing is not None:
                    return existing.id if existing.project_id == answer.project_id else None
                if answer.call_id is not None:
                    placed = await db.scalar(
                        select(CallRow).where(CallRow.id == answer.call_id).with_for_update()
                    )
                    if placed is not None and placed.project_id == answer.project_id:
                        if placed.twilio_call_sid is None:
                            placed.twilio_call_sid = call_sid
                            placed.updated_at = now
                        return placed.id
                row = CallRow(
                    id=new_call_id(),
                    project_id=answer.project_id,
                    agent_id=answer.agent_id,
                    status=DIALING,
                    direction=answer.direction,
                    from_number=answer.from_number,
                    to_number=answer.to_number,
                    twilio_call_sid=call_sid,
                    created_at=now,
                    updated_at=now,
                )
                db.add(row)
                return row.id
        except IntegrityError:  # another instance recorded the same CallSid at the same moment
            return None

    async def stream_connected(
        self, project_id: str, call_sid: str, session_id: str
    ) -> dict[str, Any] | None:
        """The call's media stream has a session: ``active``, linked to ``session_id``."""
        return await self._advance(project_id, call_sid, STREAM_CONNECTED, session_id=session_id, by_sid=True)

    async def advance(
        self, project_id: str | None, call_sid: str, event: str, *, call_id: str | None = None
    ) -> dict[str, Any] | None:
        """Apply ``event`` (``stream_ended``, ``carrier_refused`` or a Twilio ``CallStatus``) to the call
        named by ``call_id`` or else by ``call_sid`` (of ``project_id``, or of any project when None: a
        signed status callback names no project). Returns the call after the change, or None when there
        is no such call."""
        if call_id is not None:
            return await self._advance(project_id, call_id, event, by_sid=False, call_sid=call_sid)
        return await self._advance(project_id, call_sid, event, by_sid=True)

    async def _advance(
        self,
        project_id: str | None,
        key: str,
        event: str,
        *,
        by_sid: bool,
        session_id: str | None = None,
        call_sid: str | None = None,
    ) -> dict[str, Any] | None:
        now = utc_now()
        column = CallRow.twilio_call_sid if by_sid else CallRow.id
        async with self._sessions() as db, db.begin():
            row = await db.scalar(select(CallRow).where(column == key[:MAX_CALL_SID_CHARS]).with_for_update())
            if row is None or (project_id is not None and row.project_id != project_id):
                return None
            if call_sid and row.twilio_call_sid is None:
                row.twilio_call_sid = call_sid[:MAX_CALL_SID_CHARS]
            if event in TWILIO_STATUSES:
                row.carrier_status = event
            status = next_status(row.status, event)
            if status is not None:
                row.updated_at = now
                _move(row, status, now, session_id)
                await enqueue_event(
                    db,
                    self.retry,
                    project_id=row.project_id,
                    agent_id=row.agent_id,
                    session_id=row.session_id,
                    event_type=CALL_EVENT_OF_STATUS[status],
                    data=call_item(row),
                )
            return call_item(row)

    # --- reading ------------------------------------------------------------------------------------------
    async def get(self, project_id: str, call_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            row = await db.get(CallRow, call_id)
            return None if row is None or row.project_id != project_id else call_item(row)

    async def list(
        self, project_id: str, page: PageRequest, *, status: str | None = None, direction: str | None = None
    ) -> Page[dict[str, Any]]:
        """One page of calls, newest first; the cursor is bound to the filters."""
        query = select(CallRow).where(CallRow.project_id == project_id)
        if status is not None:
            query = query.where(CallRow.status == status)
        if direction is not None:
            query = query.where(CallRow.direction == direction)
        async with self._sessions() as db:
            rows = await paginate(
                db,
                query,
                CallRow.created_at,
                CallRow.id,
                page,
                scope=f"calls:{project_id}:{status or ''}:{direction or ''}",
            )
        return Page([call_item(row) for row in rows.rows], rows.next_cursor)


def _move(row: CallRow, status: str, now: datetime, session_id: str | None) -> None:
    if status == ACTIVE:
        row.connected_at = now
        if session_id is not None:
            row.session_id = session_id
    if status in FINAL_STATUSES:
        row.ended_at = now
        if row.connected_at is not None:
            row.duration_seconds = round(max(0.0, (now - row.connected_at).total_seconds()), 3)
    row.status = status


def call_item(row: CallRow) -> dict[str, Any]:
    """A call as the API shows it (HOSTED.md §7)."""
    return {
        "id": row.id,
        "status": row.status,
        "direction": row.direction,
        "agent_id": row.agent_id,
        "from_number": row.from_number,
        "to_number": row.to_number,
        "session_id": row.session_id,
        "ended_at": None if row.ended_at is None else format_timestamp(row.ended_at),
        "duration_seconds": row.duration_seconds,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }
