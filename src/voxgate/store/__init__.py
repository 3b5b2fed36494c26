"""Persistence: API keys, stored agents, one-time tokens, session records and webhooks behind one ``Store``.

store = await Store.open(settings)          # migrates, opens the engine
principal = await store.keys.verify(raw)    # -> Principal | None
config = await store.agents.load_for_session(principal.project_id, agent_id)  # -> SessionConfig | None
grant = await store.tokens.redeem(token)    # -> TokenGrant | None
store.sessions, store.webhooks, store.outbox # session history and webhooks (voxgate.history)
store.calls                                  # phone call records (/v1/calls)
await store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from voxgate.config import Settings
from voxgate.store.agents import AgentRepository, AgentUpdateConflict
from voxgate.store.answered_calls import AnsweredCalls
from voxgate.store.calls import CallRepository
from voxgate.store.database import create_engine, session_factory
from voxgate.store.document_errors import AgentDocumentError
from voxgate.store.keys import DEFAULT_PROJECT, ApiKeyInfo, KeyRepository, Principal
from voxgate.store.migrate import upgrade_to_head
from voxgate.store.secret_box import SecretBox
from voxgate.store.session_records import SessionRecordRepository
from voxgate.store.tables import ReadinessProbeRow, utc_now
from voxgate.store.tokens import MintedToken, TokenGrant, TokenRepository
from voxgate.store.webhook_outbox import RetryPolicy, WebhookOutbox
from voxgate.store.webhook_subscriptions import WebhookSubscriptionRepository

__all__ = [
    "DEFAULT_PROJECT",
    "AgentDocumentError",
    "AgentRepository",
    "AgentUpdateConflict",
    "ApiKeyInfo",
    "KeyRepository",
    "MintedToken",
    "Principal",
    "Store",
    "TokenGrant",
    "TokenRepository",
]


@dataclass
class Store:
    """The repositories over one database engine."""

    engine: AsyncEngine
    keys: KeyRepository
    agents: AgentRepository
    tokens: TokenRepository
    sessions: SessionRecordRepository
    webhooks: WebhookSubscriptionRepository
    outbox: WebhookOutbox
    box: SecretBox
    answered_calls: AnsweredCalls
    calls: CallRepository

    @classmethod
    async def open(cls, settings: Settings, *, connect_args: dict[str, Any] | None = None) -> Store:
        """Open ``settings.effective_database_url``, apply migrations, load the secret key."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        retry = RetryPolicy(base_seconds=settings.webhook_retry_base_seconds)
        return await cls.open_url(
            settings.effective_database_url, box, connect_args=connect_args, retry=retry
        )

    @classmethod
    async def open_url(
        cls,
        url: str,
        box: SecretBox,
        *,
        connect_args: dict[str, Any] | None = None,
        migrate: bool = True,
        retry: RetryPolicy | None = None,
    ) -> Store:
        engine = create_engine(url, connect_args=connect_args)
        try:
            if migrate:
                await upgrade_to_head(engine)
        except BaseException:
            await engine.dispose()
            raise
        sessions = session_factory(engine)
        retry = retry or RetryPolicy()
        return cls(
            engine=engine,
            keys=KeyRepository(sessions),
            agents=AgentRepository(sessions, box),
            tokens=TokenRepository(engine),
            sessions=SessionRecordRepository(sessions, retry),
            webhooks=WebhookSubscriptionRepository(sessions, box),
            outbox=WebhookOutbox(sessions, box, engine.dialect.name),
            box=box,
            answered_calls=AnsweredCalls(engine),
            calls=CallRepository(sessions, retry),
        )

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def probe_write(self, instance: str) -> None:
        """Raise unless the database takes (and commits) a write: ``instance``'s readiness row is
        rewritten. A read-only, full, locked or corrupt database fails here while reads may still work."""
        probes = ReadinessProbeRow.__table__
        async with self.engine.begin() as connection:
            await connection.execute(delete(probes).where(probes.c.instance == instance))
            await connection.execute(insert(probes).values(instance=instance, checked_at=utc_now()))

    async def close(self) -> None:
        await self.engine.dispose()
