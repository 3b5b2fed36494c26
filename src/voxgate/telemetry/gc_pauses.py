"""Python's garbage-collection pauses (they stop every thread, the event loop included), timed per
generation through ``gc.callbacks``.

A collection can start inside any allocation, including one made while prometheus-client holds the
(non-reentrant) lock of a metric value, as it does when a new label set creates its value in
multiprocess mode. So the callback only records plain numbers; :func:`flush_gc_pauses` moves them into
the histogram from ordinary code (the event-loop probe, every scrape).
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from typing import Any

from voxgate.telemetry.metrics import GC_PAUSE_SECONDS

_gc_started: dict[int, float] = {}
_pending: deque[tuple[str, float]] = deque(maxlen=10_000)
"""(generation, seconds) of the pauses not yet in the histogram; the oldest go first if it fills up."""


def time_gc_pauses() -> None:
    """Start observing every collection's pause (idempotent)."""
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)


def flush_gc_pauses() -> None:
    """Observe the pauses recorded since the last call (never call this from a ``gc`` callback)."""
    while _pending:
        try:
            generation, seconds = _pending.popleft()
        except IndexError:  # another thread flushed the last one
            return
        GC_PAUSE_SECONDS.labels(generation=generation).observe(seconds)


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: note each collection's pause per generation (no metric call here)."""
    thread = threading.get_ident()
    if phase == "start":
        _gc_started[thread] = time.perf_counter()
    elif (started := _gc_started.pop(thread, None)) is not None:
        _pending.append((str(info.get("generation", "?")), time.perf_counter() - started))
