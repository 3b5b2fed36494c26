"""The server process at run time: event-loop lag (:func:`watch_event_loop`), live asyncio tasks and
threads (:func:`refresh_runtime_gauges`), and in multiprocess mode this worker's scrape-time figures
(:func:`sample_worker_figures`)."""

from __future__ import annotations

import asyncio
import threading

from voxgate.telemetry.gc_pauses import flush_gc_pauses
from voxgate.telemetry.metrics import ASYNCIO_TASKS, EVENT_LOOP_LAG_SECONDS, THREADS
from voxgate.telemetry.multiprocess import WORKER_SAMPLE_SECONDS, WorkerFigures, multiprocess_directory

EVENT_LOOP_PROBE_SECONDS = 0.1

_worker_figures: WorkerFigures | None = None


def refresh_runtime_gauges() -> None:
    """Set the asyncio-task and thread gauges (in multiprocess mode also this worker's
    :class:`~voxgate.telemetry.multiprocess.WorkerFigures`); call it on the server's event loop."""
    global _worker_figures
    try:
        ASYNCIO_TASKS.set(len(asyncio.all_tasks()))
    except RuntimeError:  # no running loop
        pass
    THREADS.set(threading.active_count())
    if multiprocess_directory() is not None:
        if _worker_figures is None:
            _worker_figures = WorkerFigures()
        _worker_figures.sample()


async def sample_worker_figures(period: float = WORKER_SAMPLE_SECONDS) -> None:
    """Multiprocess mode: run forever, refreshing this worker's scrape-time figures every ``period``."""
    while True:
        refresh_runtime_gauges()
        await asyncio.sleep(period)


async def watch_event_loop(period: float = EVENT_LOOP_PROBE_SECONDS) -> None:
    """Run forever: sleep ``period`` and record how late the loop woke up."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + period
        await asyncio.sleep(period)
        EVENT_LOOP_LAG_SECONDS.observe(max(0.0, loop.time() - expected))
        flush_gc_pauses()
