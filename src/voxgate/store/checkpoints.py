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
from collections import OrderedDict
from collections.abc import Callable
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
    raise it; the session reports ``internal_error`` and carries on. ``detach`` and ``end`` never raise."""


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


ENDED_RETENTION_SECONDS = 3600.0
"""How long an ended session's id is remembered (a late ``save`` cannot revive it); as in Redis."""


class MemoryCheckpointStore:
    """Single-process checkpoint store with a grace window measured on the monotonic clock.

    Every operation first forgets what has run out: detached sessions whose grace window has passed and
    ended ids older than ``ended_retention_seconds``. Both are kept oldest first, so forgetting costs only
    the entries that expire, and the store holds no more than the live sessions, those detached within the
    grace window and the ids ended within the retention time, whether or not anyone ever resumes.
    """

    def __init__(
        self,
        grace_seconds: float = 30.0,
        *,
        ended_retention_seconds: float = ENDED_RETENTION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grace_seconds = grace_seconds
        self._ended_retention_seconds = ended_retention_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._detached_at: OrderedDict[str, float] = OrderedDict()
        """Detached sessions and when they were detached, oldest first."""
        self._ended_at: OrderedDict[str, float] = OrderedDict()
        """Ended session ids and when they ended, oldest first."""
        self._lock = asyncio.Lock()

    def _now(self) -> float:
        """The current time, after forgetting what has expired by then."""
        now = self._clock()
        for session_id in _expired(self._detached_at, now - self._grace_seconds):
            self._entries.pop(session_id, None)
        _expired(self._ended_at, now - self._ended_retention_seconds)
        return now

    async def save(self, checkpoint: SessionCheckpoint) -> None:
        async with self._lock:
            self._now()
            if checkpoint.session_id in self._ended_at:
                return
            entry = self._entries.get(checkpoint.session_id)
            if entry is None:
                self._entries[checkpoint.session_id] = _Entry(checkpoint=checkpoint)
            else:
                entry.checkpoint = checkpoint

    async def detach(self, session_id: str) -> None:
        async with self._lock:
            now = self._now()
            entry = self._entries.get(session_id)
            if entry is not None:
                entry.attached = False
                self._detached_at[session_id] = now
                self._detached_at.move_to_end(session_id)

    async def end(self, session_id: str) -> None:
        async with self._lock:
            now = self._now()
            self._entries.pop(session_id, None)
            self._detached_at.pop(session_id, None)
            self._ended_at[session_id] = now
            self._ended_at.move_to_end(session_id)

    async def claim(self, session_id: str, project_id: str) -> tuple[ClaimOutcome, SessionCheckpoint | None]:
        async with self._lock:
            self._now()
            entry = self._entries.get(session_id)
            if entry is None:
                return ClaimOutcome.NOT_FOUND, None
            if entry.checkpoint.project_id != project_id:
                return ClaimOutcome.FORBIDDEN, None
            if entry.attached:
                return ClaimOutcome.NOT_FOUND, None
            entry.attached = True
            self._detached_at.pop(session_id, None)
            return ClaimOutcome.CLAIMED, replace(entry.checkpoint)

    def __len__(self) -> int:
        """Checkpoints held: attached sessions plus those detached within the grace window."""
        return len(self._entries)

    @property
    def ended_ids(self) -> int:
        """Ended session ids still remembered."""
        return len(self._ended_at)


def _expired(times: OrderedDict[str, float], before: float) -> list[str]:
    """Remove and return the keys of ``times`` (oldest first) whose time is earlier than ``before``."""
    expired: list[str] = []
    while times:
        key, at = next(iter(times.items()))
        if at >= before:
            break
        del times[key]
        expired.append(key)
    return expired
