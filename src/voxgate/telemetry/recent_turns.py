"""The recent turns of this process (with the project of their session), for the authenticated JSON view
``GET /metrics/turns`` that the latency benchmark reads; in multiprocess mode those of every worker
(:mod:`voxgate.telemetry.turn_files`)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from voxgate.conversation.timings import TurnTimings
from voxgate.telemetry.multiprocess import multiprocess_directory
from voxgate.telemetry.turn_files import TurnMirror, TurnRecord, other_workers_turns
from voxgate.telemetry.turn_stages import stage_seconds

RECENT_TURN_LIMIT = 2000

_recent: deque[TurnRecord] = deque(maxlen=RECENT_TURN_LIMIT)
_mirror = TurnMirror(RECENT_TURN_LIMIT)
_lock = threading.Lock()


def turn_record(project_id: str | None, timings: TurnTimings, finished_at: float) -> TurnRecord:
    """One turn as ``/metrics/turns`` lists it (``finished_at``: wall-clock seconds), with its project."""
    return {
        "project_id": project_id,
        "session_id": timings.session_id,
        "reply_id": timings.reply_id,
        "finished_at": finished_at,
        "user_turn": timings.end_of_turn is not None,
        "stages_ms": {name: _ms(seconds) for name, seconds in stage_seconds(timings).items()},
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def remember_turn(project_id: str | None, timings: TurnTimings) -> None:
    """Keep a turn that just finished (and, in multiprocess mode, mirror it for the other workers)."""
    record = turn_record(project_id, timings, time.time())
    with _lock:
        _recent.append(record)
        if (directory := multiprocess_directory()) is not None:
            _mirror.write(directory, record, _recent)


def recent_turns(project_id: str, session_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The recent turns of ``project_id``'s sessions (oldest first), optionally only these sessions,
    without their ``project_id``; in multiprocess mode those of every worker. Reads files then: call it
    off the event loop."""
    wanted = set(session_ids) if session_ids is not None else None
    with _lock:
        records = list(_recent)
    directory = multiprocess_directory()
    if directory is not None:
        records.extend(other_workers_turns(directory))
        records.sort(key=lambda record: float(record["finished_at"]))
    return [
        {key: value for key, value in record.items() if key != "project_id"}
        for record in records
        if record.get("project_id") == project_id and (wanted is None or record.get("session_id") in wanted)
    ]
