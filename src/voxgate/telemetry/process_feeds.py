"""The process-wide feeds of the metrics, installed once by the ``/metrics`` router (:func:`install`): the
inference executors' queue waits (their ``WAIT_OBSERVERS``) and the garbage collector's pauses. What one
session measures reaches the metrics through its own telemetry object instead
(:class:`~voxgate.telemetry.session_meter.SessionMeter`)."""

from __future__ import annotations

from voxgate.speech.executor import WAIT_OBSERVERS
from voxgate.telemetry.gc_pauses import time_gc_pauses
from voxgate.telemetry.metrics import INFERENCE_WAIT_SECONDS


def observe_inference_wait(model: str, seconds: float) -> None:
    INFERENCE_WAIT_SECONDS.labels(model=model).observe(seconds)


def install() -> None:
    """Register the process-wide observers (idempotent)."""
    if observe_inference_wait not in WAIT_OBSERVERS:
        WAIT_OBSERVERS.append(observe_inference_wait)
    time_gc_pauses()
