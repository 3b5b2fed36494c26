"""Several worker processes (``voxgate serve --workers N``) sharing their metrics: prometheus-client's
multiprocess mode.

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before the workers start
(:mod:`voxgate.serve`); every worker writes its metric values to files there, and ``GET /metrics`` on any
worker merges them all (:mod:`voxgate.telemetry.exposition`). Counters and histograms are summed over every
worker that ran; each gauge declares its ``multiprocess_mode``. What one process computes at scrape time
(inference queue depth, ``process_*`` figures) each worker samples into the files every
:data:`WORKER_SAMPLE_SECONDS` (:class:`WorkerFigures`); a worker that exits is marked dead
(:func:`mark_worker_dead`), and the gauges of one that died without saying so are dropped at the next
scrape (:func:`forget_dead_workers`). The recent turns are shared too (:mod:`voxgate.telemetry.turn_files`).
Without ``PROMETHEUS_MULTIPROC_DIR`` (one process) none of this runs.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Literal

from prometheus_client import Counter, Gauge, ProcessCollector, values
from prometheus_client.multiprocess import mark_process_dead

from voxgate.telemetry.inference_queues import inference_queue_depth

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's switch to multiprocess mode; it is read once, when prometheus-client is imported."""
WORKER_SAMPLE_SECONDS = 1.0
"""How often each worker writes its scrape-time figures (queue depth, process_*, tasks, threads) to the
shared files; the worker answering a scrape writes its own just before."""

PROCESS_GAUGE_MODES: dict[str, Literal["livesum", "livemin"]] = {
    "process_virtual_memory_bytes": "livesum",
    "process_resident_memory_bytes": "livesum",
    "process_open_fds": "livesum",
    "process_max_fds": "livemin",
    "process_start_time_seconds": "livemin",
}
"""How the ``process_*`` gauges of prometheus-client's process collector add up over the live workers
(memory and descriptors: the server's total; the descriptor limit: the tightest; the start time: the
oldest live worker's). ``process_cpu_seconds_total`` stays a counter: the CPU of every worker that ran."""


def multiprocess_directory() -> str | None:
    """The directory of prometheus-client's multiprocess mode when this process runs in it, else None."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


class WorkerFigures:
    """Multiprocess mode: this worker's share of what one process computes at scrape time (custom
    collectors cannot see other processes), written to the shared files by :meth:`sample`."""

    def __init__(self) -> None:
        self._queue_depth = Gauge(
            "voxgate_inference_queue_depth",
            "Inference jobs submitted and not finished (waiting plus running), per model, summed over the "
            "live workers (sampled by each worker).",
            ["model"],
            multiprocess_mode="livesum",
            registry=None,
        )
        self._models: set[str] = set()
        self._process = ProcessCollector(registry=None)
        self._process_gauges: dict[str, Gauge] = {}
        self._cpu = Counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds, summed over every worker that ran "
            "(sampled by each worker).",
            registry=None,
        )
        self._cpu_counted = 0.0

    def sample(self) -> None:
        depth = inference_queue_depth()
        self._models.update(depth)
        for model in self._models:
            self._queue_depth.labels(model=model).set(depth.get(model, 0))
        for family in self._process.collect():
            for sample in family.samples:
                if sample.name == "process_cpu_seconds_total":
                    if sample.value > self._cpu_counted:
                        self._cpu.inc(sample.value - self._cpu_counted)
                        self._cpu_counted = sample.value
                elif (mode := PROCESS_GAUGE_MODES.get(sample.name)) is not None:
                    gauge = self._process_gauges.get(sample.name)
                    if gauge is None:
                        gauge = Gauge(
                            sample.name,
                            f"{family.documentation} ({mode} over the live workers).",
                            multiprocess_mode=mode,
                            registry=None,
                        )
                        self._process_gauges[sample.name] = gauge
                    gauge.set(sample.value)


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that died without :func:`mark_worker_dead` (killed, crashed)."""
    pids: set[int] = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = Path(path).stem.rsplit("_", 1)[-1]
        if pid.isdigit():
            pids.add(int(pid))
    for pid in pids:
        if not _process_exists(pid):
            mark_process_dead(pid, directory)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def mark_worker_dead() -> None:
    """Multiprocess mode: this worker is exiting; its live gauges no longer count (else a no-op)."""
    directory = multiprocess_directory()
    if directory is not None:
        mark_process_dead(os.getpid(), directory)
