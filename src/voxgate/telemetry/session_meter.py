"""One connection's session as the metrics see it: the Prometheus-backed session telemetry.

A transport makes one :class:`SessionMeter` per admitted connection (:mod:`voxgate.api.connection`) and
uses it twice: the connection's sink shows it every event before it is sent (:meth:`SessionMeter.on_event`:
sessions started, active and ended, ``session.error`` codes; before, so that a client that has seen an
event can already read its effect at ``/metrics``), and the session gets it as its
:class:`~voxgate.conversation.session_telemetry.SessionTelemetry` (finished turns: the stage histograms,
the recent turns of ``/metrics/turns`` under the connection's project, the ``voxgate.turns`` log line;
input frame lag). Refusals before any session exists are counted with :func:`count_session_error`.
"""

from __future__ import annotations

import logging
from typing import Any

from voxgate.conversation.timings import TurnTimings, log_turn
from voxgate.telemetry.metrics import (
    INPUT_FRAME_LAG_SECONDS,
    SESSION_ERRORS,
    SESSIONS_ACTIVE,
    SESSIONS_ENDED,
    SESSIONS_STARTED,
    TURN_STAGE_SECONDS,
    TURNS,
)
from voxgate.telemetry.recent_turns import remember_turn
from voxgate.telemetry.turn_stages import stage_seconds

logger = logging.getLogger(__name__)


def count_session_error(code: str) -> None:
    """One ``session.error`` (or refusal) of this code, e.g. a connection refused before its session."""
    SESSION_ERRORS.labels(code=code).inc()


class SessionMeter:
    """Follows one connection's session (see the module docstring). ``close()`` when the connection is
    finished (idempotent; ``session.ended`` closes the meter already)."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.session_id: str | None = None
        self.ended_sent = False
        self._active = False

    # --- the events the connection sends -------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "session.ready":
            if not self._active:
                self._active = True
                SESSIONS_STARTED.inc()
                SESSIONS_ACTIVE.inc()
            self.session_id = str(event.session_id)
        elif kind == "session.error":
            count_session_error(str(event.code))
        elif kind == "session.ended":
            self.ended_sent = True
            self.close()  # counted before the client can see the event

    def close(self) -> None:
        if not self._active:
            return
        self._active = False
        SESSIONS_ACTIVE.dec()
        SESSIONS_ENDED.labels(how="ended" if self.ended_sent else "disconnected").inc()

    # --- SessionTelemetry: what the session reports ---------------------------------------------------
    def turn_finished(self, timings: TurnTimings) -> None:
        log_turn(timings)
        try:
            TURNS.labels(kind="user" if timings.end_of_turn is not None else "agent").inc()
            for stage, seconds in stage_seconds(timings).items():
                if seconds is not None:
                    TURN_STAGE_SECONDS.labels(stage=stage).observe(seconds)
            remember_turn(self.project_id, timings)
        except Exception:  # measuring must never break the conversation
            logger.exception("could not record a finished turn")

    def input_frame_processed(self, lag_seconds: float) -> None:
        INPUT_FRAME_LAG_SECONDS.observe(lag_seconds)
