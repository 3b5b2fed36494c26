"""What a session reports about itself while it runs, to whoever measures it.

The transport hands each session one :class:`SessionTelemetry` (``SessionDependencies.telemetry``): the
server passes its Prometheus-backed meter (:class:`voxgate.telemetry.session_meter.SessionMeter`), tests and
benchmarks pass their own. Sessions, errors and their codes are metered by the transport from the events
the session sends (the same meter sees them through the connection's sink); what only the session knows
comes through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from voxgate.conversation.timings import TurnTimings, log_turn


class SessionTelemetry(Protocol):
    def turn_finished(self, timings: TurnTimings) -> None:
        """A reply finished (done, interrupted or cut): its latency timestamps."""
        ...

    def input_frame_processed(self, lag_seconds: float) -> None:
        """An ``input.audio`` frame was handled, ``lag_seconds`` after it reached the session (queue wait,
        decoding, resampling, VAD, turn-taking)."""
        ...


class TurnLog:
    """The telemetry of a session nobody measures: each finished turn is logged (:func:`log_turn`)."""

    def turn_finished(self, timings: TurnTimings) -> None:
        log_turn(timings)

    def input_frame_processed(self, lag_seconds: float) -> None:
        pass


class TurnsAlsoTo:
    """``inner``, and each finished turn also handed to ``observer`` (e.g. the session's history record)."""

    def __init__(self, inner: SessionTelemetry, observer: Callable[[TurnTimings], None]) -> None:
        self._inner = inner
        self._observer = observer

    def turn_finished(self, timings: TurnTimings) -> None:
        self._inner.turn_finished(timings)
        self._observer(timings)

    def input_frame_processed(self, lag_seconds: float) -> None:
        self._inner.input_frame_processed(lag_seconds)
