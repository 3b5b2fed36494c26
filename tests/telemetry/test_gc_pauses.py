"""A garbage collection can start while prometheus-client holds a metric value's (non-reentrant) lock:
the gc callback must not touch a metric, or that thread deadlocks (seen with two workers, where a new
label set creates its value under the lock)."""

from __future__ import annotations

import gc

import pytest

from voxgate.telemetry import gc_pauses
from voxgate.telemetry.metrics import GC_PAUSE_SECONDS


def _observed(generation: str) -> float:
    for metric in GC_PAUSE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("generation") == generation:
                return sample.value
    return 0.0


def test_the_gc_callback_touches_no_metric_and_a_flush_observes_its_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc_pauses.flush_gc_pauses()
    before = _observed("2")

    touched: list[dict[str, str]] = []  # (an exception raised in a gc callback would only be printed)
    with monkeypatch.context() as patch:
        patch.setattr(GC_PAUSE_SECONDS, "labels", lambda **labels: touched.append(labels))
        gc_pauses.time_gc_pauses()
        gc.collect()  # runs the callback: it must only note the pause
    assert touched == []
    gc_pauses.flush_gc_pauses()
    assert _observed("2") == before + 1
