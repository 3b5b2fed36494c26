"""The webhook outbox: deliveries written in the transaction of the record change they announce, claimed
by one instance at a time, retried with exponential backoff, every attempt recorded (HOSTED.md §6).

Writing (inside the caller's transaction, so a record change and its announcement commit together)::

    await enqueue_event(db, box, policy, project_id=..., agent_id=..., session_id=..., event_type=...,
                        data={...}, inline_webhook=row.inline_webhook)

Sending (``history.webhook_worker``)::

    batch = await outbox.claim(instance, limit=10, lease_seconds=60)
    ... POST ...
    await outbox.finish_attempt(delivery, outcome)

A claim is a lease (``claimed_by``/``claimed_until``): PostgreSQL selects due rows ``FOR UPDATE SKIP
LOCKED``; SQLite (one writer at a time) claims them with one atomic ``UPDATE``. Either way a due delivery
goes to exactly one instance; a delivery whose instance died mid-send is claimed again once its lease ran
out (at-least-once then: receivers dedupe on the ``X-AAI-Delivery-Id`` header).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voxgate.store.paging import Page, PageRequest, paginate
from voxgate.store.secret_box import SecretBox
from voxgate.store.tables import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
    utc_now,
)
from voxgate.store.timestamps import format_timestamp

DELIVERY_ID_PREFIX = "whd_"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n (1-based) failed: the next one waits ``base * 2**(n-1)`` seconds, at most ``max_interval``;
    no attempt starts after ``window`` seconds from the delivery's creation (then it is ``failed``)."""

    base_seconds: float = 15.0
    max_interval_seconds: float = 3600.0
    window_seconds: float = 24 * 3600.0 + 3600.0

    def next_delay(self, attempts: int) -> float:
        return min(self.max_interval_seconds, self.base_seconds * 2 ** max(0, attempts - 1))


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: str
    url: str
    body: str
    secret: str
    attempt: int
    """The number of the attempt about to be made (1 for the first)."""
    claim: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    started_at: datetime
    duration_ms: float
    http_status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.http_status_code is not None and 200 <= self.http_status_code < 300


def new_delivery_id() -> str:
    return DELIVERY_ID_PREFIX + uuid.uuid4().hex


def event_body(event_type: str, data: dict[str, Any], created_at: datetime) -> str:
    """The delivery's JSON body: ``{type, created_at, data}`` (HOSTED.md §6)."""
    payload = {"type": event_type, "created_at": format_timestamp(created_at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def enqueue_event(
    db: AsyncSession,
    policy: RetryPolicy,
    *,
    project_id: str,
    agent_id: str | None,
    session_id: str | None,
    event_type: str,
    data: dict[str, Any],
    inline_webhook: dict[str, Any] | None = None,
    due: datetime | None = None,
) -> int:
    """Add one delivery per enabled subscription of the project (all agents, or ``agent_id``) that wants
    ``event_type``, and one for the session's inline webhook when it wants it; in ``db``'s transaction.
    Returns how many. ``due``: the first attempt's time (default now)."""
    now = utc_now()
    body = event_body(event_type, data, now)
    rows = (
        await db.scalars(
            select(WebhookSubscriptionRow).where(
                WebhookSubscriptionRow.project_id == project_id, WebhookSubscriptionRow.enabled.is_(True)
            )
        )
    ).all()
    targets: list[tuple[str | None, str, str | None]] = [
        (row.id, row.url, None)
        for row in rows
        if event_type in row.events and (row.agent_id is None or row.agent_id == agent_id)
    ]
    if inline_webhook and event_type in inline_webhook.get("events", ()):
        targets.append((None, inline_webhook["url"], inline_webhook.get("secret")))
    for subscription_id, url, secret in targets:
        db.add(
            WebhookDeliveryRow(
                id=new_delivery_id(),
                project_id=project_id,
                subscription_id=subscription_id,
                session_id=session_id,
                event_type=event_type,
                url=url,
                secret=secret,
                body=body,
                status=PENDING,
                attempt_count=0,
                next_retry_at=due or now,
                give_up_at=(due or now) + timedelta(seconds=policy.window_seconds),
                created_at=now,
            )
        )
    return len(targets)


async def cancel_unsent(db: AsyncSession, session_id: str, event_type: str) -> None:
    """Drop deliveries of ``event_type`` for the session that no attempt has started (a scheduled
    ``session.completed`` of a session that was resumed)."""
    await db.execute(
        delete(WebhookDeliveryRow).where(
            WebhookDeliveryRow.session_id == session_id,
            WebhookDeliveryRow.event_type == event_type,
            WebhookDeliveryRow.status == PENDING,
            WebhookDeliveryRow.attempt_count == 0,
            WebhookDeliveryRow.claimed_by.is_(None),
        )
    )


class WebhookOutbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, dialect: str) -> None:
        self._sessions = sessions
        self._box = box
        self._dialect = dialect

    # --- sending ----------------------------------------------------------------------------------------
    async def claim(self, instance: str, *, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries for ``instance`` for ``lease_seconds``."""
        now = utc_now()
        token = f"{instance[:40]}:{secrets.token_hex(8)}"
        until = now + timedelta(seconds=lease_seconds)
        due = and_(
            WebhookDeliveryRow.status == PENDING,
            WebhookDeliveryRow.next_retry_at <= now,
            or_(WebhookDeliveryRow.claimed_until.is_(None), WebhookDeliveryRow.claimed_until < now),
        )
        async with self._sessions() as db, db.begin():
            if self._dialect == "postgresql":
                ids = list(
                    (
                        await db.scalars(
                            select(WebhookDeliveryRow.id)
                            .where(due)
                            .order_by(WebhookDeliveryRow.next_retry_at)
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
                )
                if not ids:
                    return []
                await db.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id.in_(ids))
                    .values(claimed_by=token, claimed_until=until)
                )
            else:
                candidates = (
                    select(WebhookDeliveryRow.id)
                    .where(due)
                    .order_by(WebhookDeliveryRow.next_retry_at)
                    .limit(limit)
                    .scalar_subquery()
                )
                await db.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id.in_(candidates), due)
                    .values(claimed_by=token, claimed_until=until)
                    .execution_options(synchronize_session=False)
                )
            rows = (
                await db.scalars(select(WebhookDeliveryRow).where(WebhookDeliveryRow.claimed_by == token))
            ).all()
            secrets_by_subscription = await self._subscription_secrets(
                db, {row.subscription_id for row in rows if row.subscription_id}
            )
        claimed: list[ClaimedDelivery] = []
        for row in rows:
            encrypted = (
                row.secret
                if row.subscription_id is None
                else secrets_by_subscription.get(row.subscription_id)
            )
            claimed.append(
                ClaimedDelivery(
                    id=row.id,
                    url=row.url,
                    body=row.body,
                    secret=self._box.decrypt(encrypted) if encrypted else "",
                    attempt=row.attempt_count + 1,
                    claim=token,
                )
            )
        return claimed

    async def _subscription_secrets(self, db: AsyncSession, ids: set[str]) -> dict[str, str]:
        """The current (encrypted) secret of each subscription: a rotation applies to the next attempt."""
        if not ids:
            return {}
        rows = await db.execute(
            select(WebhookSubscriptionRow.id, WebhookSubscriptionRow.secret).where(
                WebhookSubscriptionRow.id.in_(ids)
            )
        )
        return {row.id: row.secret for row in rows}

    async def finish_attempt(
        self, delivery: ClaimedDelivery, outcome: AttemptOutcome, policy: RetryPolicy, instance: str
    ) -> str:
        """Record the attempt and the delivery's new state (only while this claim holds); returns it."""
        now = utc_now()
        async with self._sessions() as db, db.begin():
            row = await db.scalar(
                select(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.id == delivery.id, WebhookDeliveryRow.claimed_by == delivery.claim
                )
            )
            if row is None:  # deleted with its session meanwhile, or the lease ran out and was re-claimed
                return "lost"
            db.add(
                WebhookAttemptRow(
                    delivery_id=row.id,
                    attempt=delivery.attempt,
                    started_at=outcome.started_at,
                    duration_ms=round(outcome.duration_ms, 1),
                    http_status_code=outcome.http_status_code,
                    error=_clip(outcome.error),
                    instance=instance[:160],
                )
            )
            row.attempt_count = delivery.attempt
            row.http_status_code = outcome.http_status_code
            row.error = _clip(outcome.error)
            row.claimed_by = None
            row.claimed_until = None
            if outcome.delivered:
                row.status = DELIVERED
                row.delivered_at = now
                row.next_retry_at = None
            else:
                retry_at = now + timedelta(seconds=policy.next_delay(delivery.attempt))
                if retry_at > row.give_up_at:
                    row.status = FAILED
                    row.next_retry_at = None
                else:
                    row.next_retry_at = retry_at
            return row.status

    # --- reading ----------------------------------------------------------------------------------------
    async def list_for_session(
        self, project_id: str, session_id: str, page: PageRequest
    ) -> Page[dict[str, Any]]:
        async with self._sessions() as db:
            rows = await paginate(
                db,
                select(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.project_id == project_id, WebhookDeliveryRow.session_id == session_id
                ),
                WebhookDeliveryRow.created_at,
                WebhookDeliveryRow.id,
                page,
                scope=f"deliveries:{project_id}:{session_id}",
            )
        return Page([delivery_view(row) for row in rows.rows], rows.next_cursor)

    async def attempts(self, delivery_id: str) -> Sequence[WebhookAttemptRow]:
        async with self._sessions() as db:
            return (
                await db.scalars(
                    select(WebhookAttemptRow)
                    .where(WebhookAttemptRow.delivery_id == delivery_id)
                    .order_by(WebhookAttemptRow.attempt)
                )
            ).all()

    async def delete_finished_before(self, moment: datetime) -> int:
        """Retention: delivered or failed deliveries created before ``moment``."""
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.status != PENDING, WebhookDeliveryRow.created_at < moment
                )
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delivery_view(row: WebhookDeliveryRow) -> dict[str, Any]:
    """A delivery as ``GET /v1/sessions/{id}/webhook-deliveries`` lists it (HOSTED.md §6)."""
    return {
        "id": row.id,
        "subscription_id": row.subscription_id,
        "session_id": row.session_id,
        "event_type": row.event_type,
        "attempt_count": row.attempt_count,
        "status": row.status,
        "http_status_code": row.http_status_code,
        "error": row.error,
        "delivered_at": _stamp(row.delivered_at),
        "next_retry_at": _stamp(row.next_retry_at),
        "created_at": format_timestamp(row.created_at),
    }


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_ERROR_CHARS]
