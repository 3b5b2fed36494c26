"""Session checkpoints for ``session.resume`` (PROTOCOL.md §10).

A checkpoint is what a new connection needs to carry a conversation on: the effective configuration,
the ledger (the conversation as heard), the owning project and the session clock. The session writes
one at every turn boundary; the transport marks it detached when the socket drops (opening the grace
window) and ended after ``session.end`` or a fatal error (never resumable again).

``CheckpointStore`` is a Protocol so a Redis implementation (several instances) can replace the
in-memory default without touching the conversation engine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SessionCheckpoint:
    session_id: str
    project_id: str
    config: dict[str, Any]
    ledger: dict[str, Any]
    started_at: float
    """Wall-clock start of the session (the duration cap keeps counting across resumes)."""
    max_duration_seconds: float
    audio_seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    """Id counters (items, replies, calls) so ids stay unique after a resume."""


class CheckpointStoreUnavailable(RuntimeError):
    """The shared checkpoint store (Redis) cannot be reached or answered wrongly. ``save`` and ``claim``
    raise it; the session reports ``server_error`` and carries on. ``detach`` and ``end`` never raise."""


class SessionOwnershipLost(CheckpointStoreUnavailable):
    """``save`` found the session owned by another connection (its lease lapsed and it was resumed
    elsewhere): this copy must stop, so that the conversation never forks."""


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


class CheckpointStore(Protocol):
    async def save(self, checkpoint: SessionCheckpoint) -> None:
        """Create or replace the checkpoint; the session is attached to a live connection."""
        ...

    async def detach(self, session_id: str) -> None:
        """The connection dropped without ``session.end``: start the resume grace window."""
        ...

    async def end(self, session_id: str) -> None:
        """The session ended for good; it can never be resumed."""
        ...

    async def claim(self, session_id: str, project_id: str) -> tuple[ClaimOutcome, SessionCheckpoint | None]:
        """Attach a detached session to a new connection if it is within its grace window and owned
        by ``project_id``. Unknown, ended, expired or still-attached sessions are ``NOT_FOUND``."""
        ...


@dataclass(slots=True)
class _Entry:
    checkpoint: SessionCheckpoint
    attached: bool = True
    ended: bool = False
    detached_at: float | None = None


class MemoryCheckpointStore:
    """Single-process checkpoint store with a grace window measured on the monotonic clock."""

    def __init__(self, grace_seconds: float = 30.0, *, ended_retention_seconds: float = 3600.0) -> None:
        self._grace_seconds = grace_seconds
        self._ended_retention_seconds = ended_retention_seconds
        self._entries: dict[str, _Entry] = {}
        self._ended_at: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        for session_id, entry in list(self._entries.items()):
            if entry.detached_at is not None and now - entry.detached_at > self._grace_seconds:
                del self._entries[session_id]
        for session_id, ended_at in list(self._ended_at.items()):
            if now - ended_at > self._ended_retention_seconds:
                del self._ended_at[session_id]

    async def save(self, checkpoint: SessionCheckpoint) -> None:
        async with self._lock:
            if checkpoint.session_id in self._ended_at:
                return
            entry = self._entries.get(checkpoint.session_id)
            if entry is None:
                self._entries[checkpoint.session_id] = _Entry(checkpoint=checkpoint)
            else:
                entry.checkpoint = checkpoint

    async def detach(self, session_id: str) -> None:
        async with self._lock:
            entry = self._entries.get(session_id)
            if entry is not None and not entry.ended:
                entry.attached = False
                entry.detached_at = time.monotonic()

    async def end(self, session_id: str) -> None:
        async with self._lock:
            self._entries.pop(session_id, None)
            self._ended_at[session_id] = time.monotonic()

    async def claim(self, session_id: str, project_id: str) -> tuple[ClaimOutcome, SessionCheckpoint | None]:
        async with self._lock:
            now = time.monotonic()
            self._expire(now)
            entry = self._entries.get(session_id)
            if entry is None or entry.ended:
                return ClaimOutcome.NOT_FOUND, None
            if entry.checkpoint.project_id != project_id:
                return ClaimOutcome.FORBIDDEN, None
            if entry.attached:
                return ClaimOutcome.NOT_FOUND, None
            entry.attached = True
            entry.detached_at = None
            return ClaimOutcome.CLAIMED, replace(entry.checkpoint)

    def __len__(self) -> int:
        return len(self._entries)
