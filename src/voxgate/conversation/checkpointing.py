"""Saving a session's checkpoint, and what a failure means for the conversation.

A checkpoint (configuration, conversation, durations) lets any instance resume the session after a
drop. A store outage is reported to the client (``internal_error``, not fatal) and the conversation
carries on, resumable again from the next successful save; a session resumed by another connection
meanwhile must end here (no fork): that error closes the connection.
"""

from __future__ import annotations

import logging

from voxgate.conversation.core import SessionCore
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.protocol.events import ProtocolError
from voxgate.store.checkpoints import (
    CheckpointStore,
    CheckpointStoreUnavailable,
    SessionCheckpoint,
    SessionOwnershipLost,
)

logger = logging.getLogger(__name__)

STORAGE_UNAVAILABLE = (
    "session storage is unavailable: the conversation continues, but cannot be resumed after a "
    "disconnect until storage recovers"
)


async def save_checkpoint(
    store: CheckpointStore,
    core: SessionCore,
    *,
    project_id: str,
    started_at: float,
    max_duration_seconds: float,
    audio_seconds: float,
) -> ProtocolError | None:
    """Save ``core``'s state; the error to report when that failed (one with ``close``: ownership lost)."""
    if core.session_id is None:
        return None
    checkpoint = SessionCheckpoint(
        session_id=core.session_id,
        project_id=project_id,
        config=core.config.model_dump(mode="json"),
        ledger=core.ledger.to_dict(),
        started_at=started_at,
        max_duration_seconds=max_duration_seconds,
        audio_seconds=audio_seconds,
    )
    try:
        await store.save(checkpoint)
    except SessionOwnershipLost:
        logger.warning("session %s is owned by another connection; closing this one", core.session_id)
        return ProtocolError(
            ErrorCode.INTERNAL_ERROR,
            "this session was resumed on another connection",
            close=CloseCode.POLICY_VIOLATION,
        )
    except CheckpointStoreUnavailable as exc:
        logger.warning("session %s: checkpoint not saved: %s", core.session_id, exc)
        return ProtocolError(ErrorCode.INTERNAL_ERROR, STORAGE_UNAVAILABLE)
    return None
