"""Python's garbage-collection pauses (they stop every thread, the event loop included), timed per
generation through ``gc.callbacks``."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from voxgate.telemetry.metrics import GC_PAUSE_SECONDS

_gc_started: dict[int, float] = {}


def time_gc_pauses() -> None:
    """Start observing every collection's pause (idempotent)."""
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: observe each collection's pause per generation."""
    thread = threading.get_ident()
    if phase == "start":
        _gc_started[thread] = time.perf_counter()
    elif (started := _gc_started.pop(thread, None)) is not None:
        GC_PAUSE_SECONDS.labels(generation=str(info.get("generation", "?"))).observe(
            time.perf_counter() - started
        )
