"""SQLAlchemy table definitions (the schema the Alembic migrations create).

Timestamps are stored as naive UTC ``DateTime`` values (SQLite has no time zones); ``UtcDateTime``
converts to and from aware UTC datetimes at the boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC; returns aware UTC datetimes."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AgentRow(Base):
    __tablename__ = "agents"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    document: Mapped[dict[str, Any]]
    """The agent configuration; secrets inside it are Fernet-encrypted (see store/agent_documents.py)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    """Incremented by every update; an update only lands on the version it read (store/agents.py)."""


class TokenRow(Base):
    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    max_session_duration_seconds: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None]
    purpose: Mapped[str] = mapped_column(String(16), default="realtime", server_default="realtime")
    """``realtime`` (a ``/v1/ws`` session) or ``phone_stream`` (the Twilio media stream of ``agent_id``)."""
    agent_id: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(64))
    """The key that minted the token (None for phone-stream tokens): revoking it stops the token."""


class SessionRecordRow(Base):
    """One realtime session or phone call (HOSTED.md §6): created at ``session.ready``, ended with its close
    reason. ``owner``/``lease_until``: the live process that holds it (see history.records)."""

    __tablename__ = "session_records"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    called_number: Mapped[str | None] = mapped_column(String(64))
    public_close_reason: Mapped[str | None] = mapped_column(String(64))
    close_code: Mapped[int | None]
    duration_seconds: Mapped[float | None]
    config: Mapped[dict[str, Any]]
    """The effective configuration without secrets (protocol.session_view)."""
    inline_webhook: Mapped[dict[str, Any] | None]
    """The ``webhook`` of ``session.update``: ``{url, events, secret}`` with the secret encrypted."""
    artifacts: Mapped[list[Any]] = mapped_column(JSON)
    """``[{type, name, content_type, complete, segment}]`` (history.artifacts)."""
    segments: Mapped[int] = mapped_column(Integer, default=1)
    """Connections the session ran on (a resumed session adds one)."""
    owner: Mapped[str | None] = mapped_column(String(160))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class WebhookSubscriptionRow(Base):
    __tablename__ = "webhook_subscriptions"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(1024))
    """Fernet-encrypted (store.secret_box); write-only through the API."""
    secret_version: Mapped[int]
    enabled: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """The outbox: one event for one receiver, written with the record change it announces and sent by
    whichever instance claims it first (history.webhook_worker)."""

    __tablename__ = "webhook_deliveries"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(64))
    """None for the inline ``webhook`` of a session (its url and secret are then on this row)."""
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str | None] = mapped_column(String(1024))
    body: Mapped[str] = mapped_column(Text)
    """The exact JSON sent (and signed) on every attempt."""
    status: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int]
    http_status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(1024))
    delivered_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    give_up_at: Mapped[datetime]
    created_at: Mapped[datetime]


class WebhookAttemptRow(Base):
    __tablename__ = "webhook_attempts"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    started_at: Mapped[datetime]
    duration_ms: Mapped[float]
    http_status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(1024))
    instance: Mapped[str] = mapped_column(String(160))


class AnsweredCallRow(Base):
    """A Twilio call already answered (its stream token minted): a replayed webhook mints nothing."""

    __tablename__ = "answered_calls"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    answered_at: Mapped[datetime] = mapped_column(index=True)


class CallRow(Base):
    """One phone call (HOSTED.md §7): placed through ``POST /v1/calls`` or answered by the voice webhook;
    its status follows Twilio's status callbacks and the media-stream bridge (store/call_states.py)."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    direction: Mapped[str] = mapped_column(String(16), index=True)
    from_number: Mapped[str | None] = mapped_column(String(64))
    to_number: Mapped[str | None] = mapped_column(String(64))
    twilio_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    carrier_status: Mapped[str | None] = mapped_column(String(32))
    """Twilio's last ``CallStatus`` for the call (kept for diagnosis; not part of the API)."""
    session_id: Mapped[str | None] = mapped_column(String(64))
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None]
    """Seconds the call was connected (``active``); None when it never was."""
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class ReadinessProbeRow(Base):
    """One row per instance, rewritten by ``/readyz`` to prove that writes are durable."""

    __tablename__ = "readiness_probes"

    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    checked_at: Mapped[datetime]
