"""Keeping a long-running server's memory flat, and looking inside it when it is not: the start-up objects
frozen out of the garbage collector, cyclic garbage collected and the C heap trimmed when the server goes
idle (:class:`HeapTrimmer`), and opt-in memory reports on SIGUSR2 (:data:`DEBUG_MEMORY_ENV`).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import itertools
import json
import logging
import os
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxgate.telemetry.native_heap import native_heap, trim_native_heap

logger = logging.getLogger(__name__)


def freeze_startup_objects() -> int:
    """Collect, then move every object alive at the end of start-up into the garbage collector's permanent
    generation (``gc.freeze``); returns how many.

    Start-up leaves ~140-150k container objects that live until exit (modules, functions, SQLAlchemy
    metadata, the models' Python side), and every full collection walked them all: 110 ms of CPU on the
    reference machine, whether it found garbage or not, with the event loop stopped. Frozen, they are
    skipped, and a full collection of the idle server takes 0.1 ms. The price: should a start-up object
    later become part of unreachable reference cycles, it is never collected (bounded by the start-up set).
    """
    gc.collect()
    gc.freeze()
    gc.collect()  # the oldest generation is now empty: Python compares later growth with its size
    return gc.get_freeze_count()


def collect_and_trim() -> bool:
    """Collect all cyclic garbage, then give the C heap's free pages back to the OS (True if any were)."""
    gc.collect()
    return trim_native_heap()


HEAP_TRIM_IDLE_SECONDS = 2.0


class HeapTrimmer:
    """Once no session has run for ``idle_seconds``, collects the cyclic garbage and gives the C heap's
    free pages back to the OS (:func:`collect_and_trim`), once per busy period.

    An ended session's objects form reference cycles, so its memory (audio buffers, resampler states)
    waits for a full garbage collection, which Python starts only after many allocations; and under load
    glibc's malloc keeps freed memory mapped for reuse, returning only the top of a heap by itself. After
    4 minutes of the soak the idle server held 13-20 MB of such garbage or free pages below a few live
    allocations, while the C heap's bytes in use after a collection were flat, and idle RSS was up 12 %.
    ``malloc_trim(0)`` (unlike ``free``) also returns free pages inside the heap. Both run on the event loop,
    only when no realtime session or phone call runs: the collection is ~0.1 ms with the start-up objects
    frozen (:func:`freeze_startup_objects`), the trim a few ms to a few tens of ms.
    """

    def __init__(
        self,
        sessions: Callable[[], int],
        *,
        trim: Callable[[], bool],
        idle_seconds: float = HEAP_TRIM_IDLE_SECONDS,
    ) -> None:
        """``sessions()``: how many sessions run now; ``trim()``: give free heap pages back (True if any)."""
        self._sessions = sessions
        self._idle_seconds = idle_seconds
        self._trim = trim
        self.trims = 0

    async def run(self) -> None:
        """Run until cancelled. The first trim also returns what loading the models left free."""
        poll = self._idle_seconds / 2
        busy_since_trim = True
        idle_for = 0.0
        while True:
            await asyncio.sleep(poll)  # polling: session slots have no "last one released" event
            if self._sessions() > 0:
                busy_since_trim, idle_for = True, 0.0
                continue
            idle_for += poll
            if busy_since_trim and idle_for >= self._idle_seconds:
                busy_since_trim = False
                started = time.perf_counter()
                released = self._trim()
                self.trims += 1
                logger.debug(
                    "idle: collected garbage and trimmed the C heap in %.1f ms (released: %s)",
                    (time.perf_counter() - started) * 1000,
                    released,
                )


DEBUG_MEMORY_ENV = "VOXGATE_DEBUG_MEMORY_DIR"
"""Opt-in diagnostics (off by default): when set to a directory, SIGUSR2 makes the server write
``memory-<pid>-<n>.json`` there (see :func:`write_memory_report`); with ``PYTHONTRACEMALLOC=<frames>`` also
a tracemalloc snapshot ``memory-<pid>-<n>.tracemalloc``. ``bench/soak.py --memory-dumps DIR`` uses it."""


def install_memory_dumps(directory: Path) -> Callable[[], None] | None:
    """Make SIGUSR2 write a memory report into ``directory``; returns the uninstaller, or None where
    signals cannot be handled (not the main thread, not Unix)."""
    loop = asyncio.get_running_loop()
    directory.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count(1)

    def dump() -> None:
        path = write_memory_report(directory / f"memory-{os.getpid()}-{next(numbers)}")
        logger.info("wrote a memory report to %s", path)

    try:
        loop.add_signal_handler(signal.SIGUSR2, dump)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        return None
    logger.warning("%s is set: SIGUSR2 writes memory reports to %s", DEBUG_MEMORY_ENV, directory)
    return lambda: loop.remove_signal_handler(signal.SIGUSR2)


def write_memory_report(stem: Path) -> Path:
    """Write ``<stem>.json`` (after a full garbage collection): RSS and the rest of
    ``/proc/self/smaps_rollup`` in kB, the C heap's bytes in use and free, the live objects the garbage
    collector tracks counted by type (``module.QualName``), threads and asyncio tasks; and, when
    tracemalloc is tracing, ``<stem>.tracemalloc`` (``tracemalloc.Snapshot.load`` reads it). Blocks the
    event loop for a fraction of a second: a diagnostic, not for a server under load."""
    gc.collect()
    counts = collections.Counter(
        f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in gc.get_objects()
    )
    heap = native_heap()
    report: dict[str, Any] = {
        "pid": os.getpid(),
        "time": time.time(),
        "smaps_rollup_kb": _smaps_rollup(),
        "native_heap": None if heap is None else {"in_use": heap.in_use, "free": heap.free},
        "threads": sorted(thread.name for thread in threading.enumerate()),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "python_objects": dict(counts.most_common()),
    }
    if tracemalloc.is_tracing():
        snapshot = stem.with_suffix(".tracemalloc")
        tracemalloc.take_snapshot().dump(str(snapshot))
        report["tracemalloc"] = str(snapshot)
    path = stem.with_suffix(".json")
    partial = stem.with_suffix(".partial")
    partial.write_text(json.dumps(report, indent=1), "utf-8")
    partial.replace(path)  # readers never see half a report
    return path


def _smaps_rollup() -> dict[str, int]:
    """``/proc/self/smaps_rollup`` in kB (Linux), or empty."""
    try:
        text = Path("/proc/self/smaps_rollup").read_text()
    except OSError:
        return {}
    figures: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            figures[parts[0].rstrip(":")] = int(parts[1])
    return figures
