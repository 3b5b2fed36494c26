"""Stored agents, scoped by project. Every method takes the caller's ``project_id``; an agent of another
project behaves exactly like one that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.protocol.agents import AgentCreate, AgentUpdate
from voxgate.protocol.config import SessionConfig
from voxgate.store.agent_documents import (
    apply_update,
    build_document,
    render_record,
    render_session_config,
)
from voxgate.store.paging import Page, PageRequest, paginate
from voxgate.store.secret_box import SecretBox
from voxgate.store.tables import AgentRow, utc_now

AGENT_ID_PREFIX = "agent_"
AgentRecordDict = dict[str, Any]
DocumentCheck = Callable[[dict[str, Any]], Awaitable[None]]
"""Called with the merged document before it is written; raises AgentDocumentError to refuse it."""
MAX_UPDATE_ATTEMPTS = 64
"""Compare-and-swap rounds before an update gives up (each round, some concurrent update lands)."""


class AgentUpdateConflict(RuntimeError):
    """Concurrent updates kept winning the race for MAX_UPDATE_ATTEMPTS rounds (REST: 409)."""

    def __init__(self, agent_id: str, attempts: int) -> None:
        super().__init__(f"agent {agent_id} changed {attempts} times while this update was applied")


def new_agent_id() -> str:
    """``agent_`` followed by 32 lowercase hex digits."""
    return AGENT_ID_PREFIX + uuid.uuid4().hex


class AgentRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    async def create(self, project_id: str, create: AgentCreate) -> AgentRecordDict:
        """Store a new agent; returns its public record (secrets masked)."""
        now = utc_now()
        agent_id = new_agent_id()
        row = AgentRow(
            id=agent_id,
            project_id=project_id,
            name=create.name,
            document=build_document(agent_id, create, self._box, now),
            created_at=now,
            updated_at=now,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
        return render_record(row.id, row.document, row.created_at, row.updated_at)

    async def list(self, project_id: str, page: PageRequest) -> Page[AgentRecordDict]:
        """One page of full records, newest first. Raises ``InvalidCursor`` for a cursor that is not one
        of this project's agent list."""
        async with self._sessions() as session:
            rows = await paginate(
                session,
                select(AgentRow).where(AgentRow.project_id == project_id),
                AgentRow.created_at,
                AgentRow.id,
                page,
                scope=f"agents:{project_id}",
            )
        records = [render_record(r.id, r.document, r.created_at, r.updated_at) for r in rows.rows]
        return Page(records, rows.next_cursor)

    async def get(self, project_id: str, agent_id: str) -> AgentRecordDict | None:
        """The public record, or None when the id is unknown or belongs to another project."""
        row = await self._load(project_id, agent_id)
        return None if row is None else render_record(row.id, row.document, row.created_at, row.updated_at)

    async def update(
        self,
        project_id: str,
        agent_id: str,
        update: AgentUpdate,
        check: DocumentCheck | None = None,
    ) -> AgentRecordDict | None:
        """Apply a partial update (PROTOCOL.md §3.3); None when not found. Raises AgentDocumentError
        (nothing stored) when the update cannot be applied or ``check`` refuses the merged document.

        Optimistic concurrency: the update is merged into the document as read and written only if the
        row still has the version it was read at (one atomic ``UPDATE ... WHERE version = ?``, on SQLite
        and PostgreSQL alike); otherwise it is merged again into the newer document. So two concurrent
        updates of different fields both land."""
        for _attempt in range(MAX_UPDATE_ATTEMPTS):
            row = await self._load(project_id, agent_id)
            if row is None:
                return None
            now = utc_now()
            document = apply_update(row.id, row.document, update, self._box, now)
            if check is not None:
                await check(document)
            updated_at = max(now, row.updated_at)
            async with self._sessions() as session, session.begin():
                result = await session.execute(
                    sa_update(AgentRow)
                    .where(
                        AgentRow.project_id == project_id,
                        AgentRow.id == agent_id,
                        AgentRow.version == row.version,
                    )
                    .values(
                        document=document,
                        name=document["name"],
                        updated_at=updated_at,
                        version=row.version + 1,
                    )
                )
            if result.rowcount:  # type: ignore[attr-defined]
                return render_record(row.id, document, row.created_at, updated_at)
        raise AgentUpdateConflict(agent_id, MAX_UPDATE_ATTEMPTS)

    async def delete(self, project_id: str, agent_id: str) -> bool:
        """Delete; False when not found."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(AgentRow).where(AgentRow.project_id == project_id, AgentRow.id == agent_id)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def load_for_session(self, project_id: str, agent_id: str) -> SessionConfig | None:
        """The agent as a session configuration with header values and llm ``api_key`` DECRYPTED.
        For server-side use only (the realtime engine); never send it to a client. None when the id is
        unknown or belongs to another project."""
        row = await self._load(project_id, agent_id)
        return None if row is None else render_session_config(row.id, row.document, self._box)

    async def project_of(self, agent_id: str) -> str | None:
        """The project that owns ``agent_id`` (ids are unique across projects), or None. Only for a
        credential that names an agent instead of a project: the Twilio voice webhook."""
        async with self._sessions() as session:
            return await session.scalar(select(AgentRow.project_id).where(AgentRow.id == agent_id))

    async def _load(self, project_id: str, agent_id: str) -> AgentRow | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(AgentRow).where(AgentRow.project_id == project_id, AgentRow.id == agent_id)
            )
