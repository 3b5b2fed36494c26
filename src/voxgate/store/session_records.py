"""Session records (HOSTED.md §6): one row per realtime session or phone call, scoped by project.

A record is written when the session becomes ready (``status: active``), again when a resumed session
becomes ready on another connection (a new *segment*), and when its connection ends (``ended``, with the
close reason and the duration). Each change writes the webhook deliveries it announces in the same
transaction (``store.webhook_outbox``).

While a connection runs, its process holds the record with an ``owner`` and a ``lease_until`` that it
renews; a record left ``active`` by a process that died is closed by :meth:`close_orphans` (at start-up
and by the periodic sweep of any instance) with ``public_close_reason: "server_stopped"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.store.paging import Page, PageRequest, paginate
from voxgate.store.tables import SessionRecordRow, WebhookDeliveryRow, utc_now
from voxgate.store.timestamps import format_timestamp
from voxgate.store.webhook_outbox import RetryPolicy, cancel_unsent, enqueue_event

ACTIVE, ENDED = "active", "ended"
STARTED_EVENT, COMPLETED_EVENT = "session.started", "session.completed"
ORPHAN_REASON = "server_stopped"
"""``public_close_reason`` of a session whose process stopped without closing it (killed, crashed)."""


@dataclass(frozen=True, slots=True)
class SessionStart:
    session_id: str
    project_id: str
    agent_id: str | None
    channel: str
    config: dict[str, Any]
    owner: str
    lease_until: datetime
    artifacts: list[dict[str, Any]]
    """Artifacts written while the session runs (so that a killed process leaves them listed)."""
    caller_number: str | None = None
    called_number: str | None = None
    inline_webhook: dict[str, Any] | None = None
    """``{url, events, secret}`` with the secret already encrypted."""


@dataclass(frozen=True, slots=True)
class SessionEnd:
    session_id: str
    segment: int
    reason: str
    close_code: int | None
    artifacts: list[dict[str, Any]]
    completed_delay_seconds: float = 0.0
    """Delay of the ``session.completed`` delivery: a dropped connection may still be resumed."""


class SessionRecordRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], retry: RetryPolicy) -> None:
        self._sessions = sessions
        self.retry = retry

    # --- writing ------------------------------------------------------------------------------------------
    async def start(self, start: SessionStart) -> int:
        """Create the record (announcing ``session.started``), or reopen it for a resumed session; returns
        the segment number of this connection (1 for a new session)."""
        now = utc_now()
        async with self._sessions() as db, db.begin():
            row = await db.scalar(
                select(SessionRecordRow).where(SessionRecordRow.id == start.session_id).with_for_update()
            )
            if row is not None:
                if row.project_id != start.project_id:
                    return 0
                row.status = ACTIVE
                row.public_close_reason = None
                row.close_code = None
                row.ended_at = None
                row.duration_seconds = None
                row.segments += 1
                row.owner = start.owner
                row.lease_until = start.lease_until
                row.artifacts = [*row.artifacts, *start.artifacts]
                if start.inline_webhook is not None:
                    row.inline_webhook = start.inline_webhook
                await cancel_unsent(db, row.id, COMPLETED_EVENT)
                return row.segments
            row = SessionRecordRow(
                id=start.session_id,
                project_id=start.project_id,
                agent_id=start.agent_id,
                status=ACTIVE,
                channel=start.channel,
                caller_number=start.caller_number,
                called_number=start.called_number,
                config=start.config,
                inline_webhook=start.inline_webhook,
                artifacts=list(start.artifacts),
                segments=1,
                owner=start.owner,
                lease_until=start.lease_until,
                created_at=now,
            )
            db.add(row)
            await self._announce(db, row, STARTED_EVENT)
            return 1

    async def end(self, end: SessionEnd) -> bool:
        """Close the record (announcing ``session.completed``) unless it was deleted or a later segment
        (a resumed connection) took it over. True when it was closed."""
        now = utc_now()
        async with self._sessions() as db, db.begin():
            row = await db.scalar(
                select(SessionRecordRow).where(SessionRecordRow.id == end.session_id).with_for_update()
            )
            if row is None or row.segments != end.segment or row.status != ACTIVE:
                return False
            _close(row, now, end.reason, end.close_code)
            row.artifacts = _merge_artifacts(row.artifacts, end.artifacts)
            due = now + timedelta(seconds=end.completed_delay_seconds)
            await self._announce(db, row, COMPLETED_EVENT, due=due)
            return True

    async def renew_leases(self, session_ids: Iterable[str], owner: str, until: datetime) -> None:
        ids = list(session_ids)
        if not ids:
            return
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(SessionRecordRow)
                .where(
                    SessionRecordRow.id.in_(ids),
                    SessionRecordRow.owner == owner,
                    SessionRecordRow.status == ACTIVE,
                )
                .values(lease_until=until)
            )

    async def close_orphans(self, owner_is_dead: Callable[[str], bool]) -> list[SessionRecordRow]:
        """Close the active records whose lease ran out or whose owner is known to be dead; returns them."""
        now = utc_now()
        async with self._sessions() as db, db.begin():
            rows = (
                await db.scalars(
                    select(SessionRecordRow)
                    .where(SessionRecordRow.status == ACTIVE)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            closed = []
            for row in rows:
                expired = row.lease_until is None or row.lease_until < now
                if not expired and not owner_is_dead(row.owner or ""):
                    continue
                ended_at = min(now, row.lease_until) if row.lease_until is not None else now
                _close(row, max(ended_at, row.created_at), ORPHAN_REASON, None)
                await self._announce(db, row, COMPLETED_EVENT)
                closed.append(row)
            return closed

    async def set_artifacts(self, session_id: str, artifacts: list[dict[str, Any]]) -> None:
        async with self._sessions() as db, db.begin():
            row = await db.get(SessionRecordRow, session_id)
            if row is not None:
                row.artifacts = _merge_artifacts(row.artifacts, artifacts)

    async def _announce(
        self, db: AsyncSession, row: SessionRecordRow, event_type: str, due: datetime | None = None
    ) -> None:
        await enqueue_event(
            db,
            self.retry,
            project_id=row.project_id,
            agent_id=row.agent_id,
            session_id=row.id,
            event_type=event_type,
            data=session_event_data(row),
            inline_webhook=row.inline_webhook,
            due=due,
        )

    # --- reading and deleting ----------------------------------------------------------------------------
    async def list(
        self, project_id: str, page: PageRequest, *, status: str | None = None, agent_id: str | None = None
    ) -> Page[dict[str, Any]]:
        """One page of list items, newest first. ``status``/``agent_id`` filter; the cursor is bound to
        the filters (a cursor of another filter is refused)."""
        query = select(SessionRecordRow).where(SessionRecordRow.project_id == project_id)
        if status is not None:
            query = query.where(SessionRecordRow.status == status)
        if agent_id is not None:
            query = query.where(SessionRecordRow.agent_id == agent_id)
        async with self._sessions() as db:
            rows = await paginate(
                db,
                query,
                SessionRecordRow.created_at,
                SessionRecordRow.id,
                page,
                scope=f"sessions:{project_id}:{status or ''}:{agent_id or ''}",
            )
        return Page([session_item(row) for row in rows.rows], rows.next_cursor)

    async def get(self, project_id: str, session_id: str) -> SessionRecordRow | None:
        async with self._sessions() as db:
            return await db.scalar(
                select(SessionRecordRow).where(
                    SessionRecordRow.project_id == project_id, SessionRecordRow.id == session_id
                )
            )

    async def delete(self, project_id: str, session_id: str) -> bool:
        """Delete the record and its deliveries; False when not found."""
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                delete(SessionRecordRow).where(
                    SessionRecordRow.project_id == project_id, SessionRecordRow.id == session_id
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await db.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.session_id == session_id))
        return True

    async def ended_before(self, moment: datetime, limit: int = 500) -> list[str]:
        """Ids of records that ended before ``moment`` (retention)."""
        async with self._sessions() as db:
            return list(
                (
                    await db.scalars(
                        select(SessionRecordRow.id)
                        .where(SessionRecordRow.status == ENDED, SessionRecordRow.ended_at < moment)
                        .limit(limit)
                    )
                ).all()
            )

    async def delete_ids(self, session_ids: list[str]) -> None:
        if not session_ids:
            return
        async with self._sessions() as db, db.begin():
            await db.execute(delete(SessionRecordRow).where(SessionRecordRow.id.in_(session_ids)))
            await db.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.session_id.in_(session_ids), WebhookDeliveryRow.status != "pending"
                )
            )

    async def known_ids(self, session_ids: list[str]) -> set[str]:
        if not session_ids:
            return set()
        async with self._sessions() as db:
            return set(
                (
                    await db.scalars(select(SessionRecordRow.id).where(SessionRecordRow.id.in_(session_ids)))
                ).all()
            )


def _close(row: SessionRecordRow, ended_at: datetime, reason: str, close_code: int | None) -> None:
    row.status = ENDED
    row.public_close_reason = reason
    row.close_code = close_code
    row.ended_at = ended_at
    row.duration_seconds = round(max(0.0, (ended_at - row.created_at).total_seconds()), 3)
    row.owner = None
    row.lease_until = None


def _merge_artifacts(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``new`` replaces entries of ``old`` with the same file name."""
    names = {artifact["name"] for artifact in new}
    return [artifact for artifact in old if artifact.get("name") not in names] + list(new)


def session_item(row: SessionRecordRow) -> dict[str, Any]:
    """A session as ``GET /v1/sessions`` lists it (HOSTED.md §6)."""
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "status": row.status,
        "public_close_reason": row.public_close_reason,
        "duration_seconds": row.duration_seconds,
        "created_at": format_timestamp(row.created_at),
        "ended_at": None if row.ended_at is None else format_timestamp(row.ended_at),
    }


def session_event_data(row: SessionRecordRow) -> dict[str, Any]:
    """The ``data`` of a session webhook: the list item plus the channel and, for calls, the numbers."""
    data = {**session_item(row), "channel": row.channel}
    if row.caller_number or row.called_number:
        data["caller_number"] = row.caller_number
        data["called_number"] = row.called_number
    return data
