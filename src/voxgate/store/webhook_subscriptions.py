"""Webhook subscriptions of a project (HOSTED.md §6), for every agent or one. The secret is stored
encrypted and never read back; rotating it bumps ``secret_version``. A subscription of another project
behaves exactly like one that does not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.store.paging import Page, PageRequest, paginate
from voxgate.store.secret_box import SecretBox
from voxgate.store.tables import WebhookSubscriptionRow, utc_now
from voxgate.store.timestamps import format_timestamp

SUBSCRIPTION_ID_PREFIX = "whsub_"
UNSET: Any = object()
"""A field a partial update leaves as it is."""


@dataclass(frozen=True, slots=True)
class SubscriptionFields:
    """Validated fields of a create (all set) or a partial update (``UNSET`` where not sent)."""

    url: Any = UNSET
    events: Any = UNSET
    secret: Any = UNSET
    agent_id: Any = UNSET
    enabled: Any = UNSET


class WebhookSubscriptionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    async def create(self, project_id: str, fields: SubscriptionFields) -> dict[str, Any]:
        now = utc_now()
        row = WebhookSubscriptionRow(
            id=SUBSCRIPTION_ID_PREFIX + uuid.uuid4().hex,
            project_id=project_id,
            agent_id=fields.agent_id,
            url=fields.url,
            events=list(fields.events),
            secret=self._box.encrypt(fields.secret),
            secret_version=1,
            enabled=True if fields.enabled is UNSET else fields.enabled,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions() as db, db.begin():
            db.add(row)
        return subscription_view(row)

    async def list(self, project_id: str, page: PageRequest) -> Page[dict[str, Any]]:
        async with self._sessions() as db:
            rows = await paginate(
                db,
                select(WebhookSubscriptionRow).where(WebhookSubscriptionRow.project_id == project_id),
                WebhookSubscriptionRow.created_at,
                WebhookSubscriptionRow.id,
                page,
                scope=f"subscriptions:{project_id}",
            )
        return Page([subscription_view(row) for row in rows.rows], rows.next_cursor)

    async def get(self, project_id: str, subscription_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            row = await self._load(db, project_id, subscription_id)
        return None if row is None else subscription_view(row)

    async def update(
        self, project_id: str, subscription_id: str, fields: SubscriptionFields
    ) -> dict[str, Any] | None:
        async with self._sessions() as db, db.begin():
            row = await self._load(db, project_id, subscription_id)
            if row is None:
                return None
            if fields.url is not UNSET:
                row.url = fields.url
            if fields.events is not UNSET:
                row.events = list(fields.events)
            if fields.agent_id is not UNSET:
                row.agent_id = fields.agent_id
            if fields.enabled is not UNSET:
                row.enabled = fields.enabled
            if fields.secret is not UNSET:
                row.secret = self._box.encrypt(fields.secret)
                row.secret_version += 1
            row.updated_at = max(utc_now(), row.updated_at)
            return subscription_view(row)

    async def delete(self, project_id: str, subscription_id: str) -> bool:
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                delete(WebhookSubscriptionRow).where(
                    WebhookSubscriptionRow.project_id == project_id,
                    WebhookSubscriptionRow.id == subscription_id,
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def _load(db: AsyncSession, project_id: str, subscription_id: str) -> WebhookSubscriptionRow | None:
        return await db.scalar(
            select(WebhookSubscriptionRow).where(
                WebhookSubscriptionRow.project_id == project_id, WebhookSubscriptionRow.id == subscription_id
            )
        )


def subscription_view(row: WebhookSubscriptionRow) -> dict[str, Any]:
    """What the API returns: never the secret, only its version."""
    return {
        "id": row.id,
        "agent_id": row.agent_id,
        "url": row.url,
        "events": list(row.events),
        "enabled": row.enabled,
        "secret_version": row.secret_version,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }
