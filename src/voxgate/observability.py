"""The server's live measures: Prometheus metric definitions and the hooks that feed them.

Everything is registered on prometheus-client's default registry, which also carries the process
collector (``process_resident_memory_bytes``, ``process_open_fds``, ``process_cpu_seconds_total``) that
the soak benchmark reads. ``GET /metrics`` (voxgate.api.metrics) renders it.

Feeds:

- per-turn stage histograms from the engine's :class:`~voxgate.conversation.timings.TurnTimings`
  (:func:`observe_turn`, registered in ``TURN_OBSERVERS`` by :func:`install`);
- input frame-processing lag (:func:`observe_frame_lag`, registered in ``FRAME_LAG_OBSERVERS``);
- inference queue wait per model (:func:`observe_inference_wait`, in the executor's ``WAIT_OBSERVERS``) and
  the live queue depth of every :class:`~voxgate.speech.executor.InferenceExecutor` (a collector);
- session life cycle and error codes, from the events a connection sends (:class:`SessionMeter`) and
  the transport's own rejections (:func:`count_session_error`);
- event-loop lag (:func:`watch_event_loop`), live asyncio tasks and threads (:func:`refresh_runtime_gauges`);
- glibc's C heap, bytes in use and free (:func:`native_heap`, a collector); :func:`trim_native_heap` gives
  free pages back to the OS (voxgate.memory_care calls it when the server goes idle).

The recent turns (with the project of their session) are kept for the authenticated JSON view
``GET /metrics/turns`` that the latency benchmark reads: :func:`recent_turns`.

**Several worker processes** (``voxgate serve --workers N``) use prometheus-client's multiprocess mode:
the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before the workers start
(voxgate.serve), every worker writes its metric values to files there, and :func:`exposition` on any
worker merges them all. Counters and histograms are summed over every worker that ran; each gauge
declares its ``multiprocess_mode`` (``livesum``: the sum over the live workers). What one process computes
at scrape time (inference queue depth, ``process_*`` figures, tasks and threads) each worker samples into
the files every :data:`WORKER_SAMPLE_SECONDS` (:class:`WorkerFigures`); a worker that exits is marked dead
(:func:`mark_worker_dead`), and the gauges of one that died without saying so are dropped at the next scrape.
The recent turns of every worker are mirrored to a small file per worker in the same directory, so
``/metrics/turns`` lists them all. Without ``PROMETHEUS_MULTIPROC_DIR`` (one process) none of this runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import glob
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from voxgate.conversation.timings import FRAME_LAG_OBSERVERS, TURN_OBSERVERS, TurnTimings
from voxgate.speech.executor import EXECUTORS, WAIT_OBSERVERS

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's switch to multiprocess mode; it is read once, when prometheus-client is imported."""


def multiprocess_directory() -> str | None:
    """The directory of prometheus-client's multiprocess mode when this process runs in it, else None."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


# --- per-turn stages ------------------------------------------------------------------------------
TURN_STAGES: tuple[tuple[str, str, str], ...] = (
    ("speech_end_to_end_of_turn", "speech_end", "end_of_turn"),
    ("end_of_turn_to_stt_final", "end_of_turn", "stt_final"),
    ("stt_final_to_llm_first_token", "stt_final", "llm_first_token"),
    ("llm_first_token_to_first_sentence", "llm_first_token", "first_sentence"),
    ("first_sentence_to_tts_first_audio", "first_sentence", "tts_first_audio"),
    ("tts_first_audio_to_first_audio_sent", "tts_first_audio", "first_audio_sent"),
    ("end_of_turn_to_first_audio_sent", "end_of_turn", "first_audio_sent"),
    ("speech_end_to_first_audio_sent", "speech_end", "first_audio_sent"),
)
"""(stage, from field, to field) of :class:`TurnTimings`. The last two are totals: server overhead plus
model time after the end-of-turn decision, and the server-side voice-to-voice latency."""

STAGE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Frame and event-loop lag; 0.05 is a boundary so "p99 < 50 ms" reads exactly off the buckets."""

TURN_STAGE_SECONDS = Histogram(
    "voxgate_turn_stage_seconds",
    "Per-turn latency of each stage of the voice pipeline, measured by the engine.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
TURNS = Counter(
    "voxgate_turns",
    "Agent replies finished: 'user' answers a user turn; 'agent' is a greeting, reply.create or a "
    "tool follow-up.",
    ["kind"],
)

# --- sessions and errors --------------------------------------------------------------------------
SESSIONS_ACTIVE = Gauge(
    "voxgate_sessions_active",
    "Realtime sessions that are ready and connected.",
    multiprocess_mode="livesum",
)
SESSIONS_STARTED = Counter(
    "voxgate_sessions_started", "Realtime sessions that reached session.ready (new or resumed)."
)
SESSIONS_ENDED = Counter(
    "voxgate_sessions_ended",
    "Realtime sessions whose connection finished: 'ended' (session.ended was sent) or 'disconnected'.",
    ["how"],
)
SESSION_ERRORS = Counter("voxgate_session_errors", "session.error events sent, by code.", ["code"])

# --- session history and webhooks -----------------------------------------------------------------
HISTORY_FAILURES = Counter(
    "voxgate_history_write_failures",
    "Artifacts that could not be written completely (e.g. a full disk), by artifact "
    "(audio, timeline, metadata); the conversation went on.",
    ["artifact"],
)
WEBHOOK_ATTEMPTS = Counter(
    "voxgate_webhook_attempts",
    "Webhook delivery attempts by outcome: 'delivered' (2xx), 'retry' (failed, retried later), "
    "'failed' (failed, given up).",
    ["outcome"],
)

# --- input path, inference, runtime ---------------------------------------------------------------
INPUT_FRAME_LAG_SECONDS = Histogram(
    "voxgate_input_frame_lag_seconds",
    "From an input.audio frame reaching its session to the end of its processing "
    "(queue wait, decode, resampling, VAD, turn-taking).",
    buckets=LAG_BUCKETS,
)
INFERENCE_WAIT_SECONDS = Histogram(
    "voxgate_inference_wait_seconds",
    "Time an inference job waited in its model's queue before a worker took it.",
    ["model"],
    buckets=STAGE_BUCKETS,
)
EVENT_LOOP_LAG_SECONDS = Histogram(
    "voxgate_event_loop_lag_seconds",
    "How late the event loop woke a periodic timer (a busy loop delays every socket read).",
    buckets=LAG_BUCKETS,
)
ASYNCIO_TASKS = Gauge(
    "voxgate_asyncio_tasks",
    "Live asyncio tasks on the server's event loop (summed over the live workers).",
    multiprocess_mode="livesum",
)
THREADS = Gauge(
    "voxgate_threads",
    "Live Python threads in the server process (summed over the live workers).",
    multiprocess_mode="livesum",
)
GC_PAUSE_SECONDS = Histogram(
    "voxgate_gc_pause_seconds",
    "Duration of Python garbage collections (they stop every thread, the event loop included).",
    ["generation"],
    buckets=LAG_BUCKETS,
)

EVENT_LOOP_PROBE_SECONDS = 0.1
WORKER_SAMPLE_SECONDS = 1.0
"""Multiprocess mode: how often each worker writes its scrape-time figures (queue depth, process_*, tasks,
threads) to the shared files; the worker answering a scrape writes its own just before."""


class InferenceQueueCollector(Collector):
    """``voxgate_inference_queue_depth{model}``: jobs waiting or running, summed over the live executors.

    One process only; in multiprocess mode the same figure comes from :class:`WorkerFigures`."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "voxgate_inference_queue_depth",
            "Inference jobs submitted and not finished (waiting plus running), per model.",
            labels=["model"],
        )
        for model, value in sorted(inference_queue_depth().items()):
            family.add_metric([model], value)
        yield family


def inference_queue_depth() -> dict[str, int]:
    """Jobs waiting or running per model, summed over this process's live executors."""
    depth: dict[str, int] = {}
    for executor in list(EXECUTORS):
        depth[executor.name] = depth.get(executor.name, 0) + executor.queue_depth
    return depth


REGISTRY.register(InferenceQueueCollector())


# --- several worker processes ---------------------------------------------------------------------
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


_worker_figures: WorkerFigures | None = None


def exposition() -> bytes:
    """The Prometheus text of ``GET /metrics``: this process's registry, or in multiprocess mode every
    worker's files merged."""
    refresh_runtime_gauges()
    directory = multiprocess_directory()
    if directory is None:
        return generate_latest(REGISTRY)
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    PlatformCollector(registry=registry)
    return generate_latest(registry)


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


# --- recent turns for the JSON view ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecordedTurn:
    project_id: str | None
    timings: TurnTimings
    finished_at: float
    """Wall-clock seconds when the reply finished."""

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.timings.session_id,
            "reply_id": self.timings.reply_id,
            "finished_at": self.finished_at,
            "user_turn": self.timings.end_of_turn is not None,
            "stages_ms": {name: _ms(seconds) for name, seconds in stage_seconds(self.timings).items()},
        }


RECENT_TURN_LIMIT = 2000
TURN_FILE_PREFIX = "voxgate_turns_"
"""Multiprocess mode: ``<dir>/voxgate_turns_<pid>.jsonl`` holds a worker's recent turns, one JSON object a
line, at most twice :data:`RECENT_TURN_LIMIT` (it is rewritten from memory when it reaches that)."""
_recent: deque[RecordedTurn] = deque(maxlen=RECENT_TURN_LIMIT)
_session_projects: dict[str, str] = {}
_lock = threading.Lock()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def stage_seconds(timings: TurnTimings) -> dict[str, float | None]:
    """Every stage of :data:`TURN_STAGES` in seconds (None when either end was not reached)."""
    result: dict[str, float | None] = {}
    for stage, start_field, end_field in TURN_STAGES:
        start, end = getattr(timings, start_field), getattr(timings, end_field)
        result[stage] = None if start is None or end is None else max(0.0, end - start)
    return result


def observe_turn(timings: TurnTimings) -> None:
    """Feed one finished turn into the stage histograms and the recent-turn list."""
    TURNS.labels(kind="user" if timings.end_of_turn is not None else "agent").inc()
    for stage, seconds in stage_seconds(timings).items():
        if seconds is not None:
            TURN_STAGE_SECONDS.labels(stage=stage).observe(seconds)
    with _lock:
        project = _session_projects.get(timings.session_id)
        turn = RecordedTurn(project, timings, time.time())
        _recent.append(turn)
        _turn_mirror.write(turn)


def recent_turns(project_id: str, session_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The recent turns of ``project_id``'s sessions (oldest first), optionally only these sessions, as
    ``RecordedTurn.to_json()`` objects; in multiprocess mode those of every worker. Reads files then:
    call it off the event loop."""
    wanted = set(session_ids) if session_ids is not None else None
    with _lock:
        records = [_turn_record(turn) for turn in _recent]
    directory = multiprocess_directory()
    if directory is not None:
        records.extend(_other_workers_turns(directory))
        records.sort(key=lambda record: float(record["finished_at"]))
    return [
        {key: value for key, value in record.items() if key != "project_id"}
        for record in records
        if record.get("project_id") == project_id and (wanted is None or record.get("session_id") in wanted)
    ]


def _turn_record(turn: RecordedTurn) -> dict[str, Any]:
    return {"project_id": turn.project_id, **turn.to_json()}


def _other_workers_turns(directory: str) -> list[dict[str, Any]]:
    own = os.path.join(directory, f"{TURN_FILE_PREFIX}{os.getpid()}.jsonl")
    records: list[dict[str, Any]] = []
    for path in glob.glob(os.path.join(directory, f"{TURN_FILE_PREFIX}*.jsonl")):
        if path == own:
            continue
        try:
            with open(path, encoding="utf-8") as lines:
                for line in lines:
                    try:
                        record = json.loads(line)
                    except ValueError:  # a line being written
                        continue
                    if isinstance(record, dict) and "finished_at" in record:
                        records.append(record)
        except OSError:  # rewritten or removed meanwhile
            continue
    return records


class _TurnMirror:
    """Multiprocess mode: appends each recent turn of this worker to its file (see :data:`TURN_FILE_PREFIX`);
    called under ``_lock``. A write error is logged once and ends the mirroring."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._lines = 0
        self._failed = False

    def write(self, turn: RecordedTurn) -> None:
        directory = multiprocess_directory()
        if directory is None or self._failed:
            return
        try:
            if self._file is None or self._lines >= 2 * RECENT_TURN_LIMIT:
                self._rewrite(Path(directory) / f"{TURN_FILE_PREFIX}{os.getpid()}.jsonl")
            else:
                self._file.write(json.dumps(_turn_record(turn)) + "\n")
                self._file.flush()
                self._lines += 1
        except OSError as exc:
            self._failed = True
            logger.warning(
                "cannot share recent turns with the other workers (%s): /metrics/turns lists "
                "only the turns of the worker that answers",
                exc,
            )

    def _rewrite(self, path: Path) -> None:
        """The file anew from the turns in memory (the newest included), replaced atomically."""
        partial = path.with_suffix(".partial")
        partial.write_text("".join(json.dumps(_turn_record(turn)) + "\n" for turn in _recent), "utf-8")
        os.replace(partial, path)
        if self._file is not None:
            self._file.close()
        self._file = path.open("a", encoding="utf-8")
        self._lines = len(_recent)


_turn_mirror = _TurnMirror()


def observe_frame_lag(seconds: float) -> None:
    INPUT_FRAME_LAG_SECONDS.observe(seconds)


def observe_inference_wait(model: str, seconds: float) -> None:
    INFERENCE_WAIT_SECONDS.labels(model=model).observe(seconds)


def count_session_error(code: str) -> None:
    SESSION_ERRORS.labels(code=code).inc()


def count_history_failure(artifact: str) -> None:
    HISTORY_FAILURES.labels(artifact=artifact).inc()


def count_webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()


class SessionMeter:
    """Follows one connection's session from the events sent to its client.

    ``on_event(event)`` for every outbound event, before it is sent (so a client that has seen an event
    can already read its effect at ``/metrics``); ``close()`` when the connection is finished (idempotent;
    ``session.ended`` closes the meter already).
    """

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.session_id: str | None = None
        self.ended_sent = False
        self._active = False

    def on_event(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "session.ready":
            if not self._active:
                self._active = True
                SESSIONS_STARTED.inc()
                SESSIONS_ACTIVE.inc()
            self.session_id = str(event.session_id)
            with _lock:
                _session_projects[self.session_id] = self.project_id
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
        if self.session_id is not None:
            with _lock:
                _session_projects.pop(self.session_id, None)


# --- runtime ---------------------------------------------------------------------------------------
def refresh_runtime_gauges() -> None:
    """Set the asyncio-task and thread gauges (in multiprocess mode also this worker's
    :class:`WorkerFigures`); call it on the server's event loop."""
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


_installed = False


def install() -> None:
    """Register the observers with the engine and the executors (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    TURN_OBSERVERS.append(observe_turn)
    FRAME_LAG_OBSERVERS.append(observe_frame_lag)
    WAIT_OBSERVERS.append(observe_inference_wait)
    gc.callbacks.append(_time_gc)


_gc_started: dict[int, float] = {}


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: observe each collection's pause per generation."""
    thread = threading.get_ident()
    if phase == "start":
        _gc_started[thread] = time.perf_counter()
    elif (started := _gc_started.pop(thread, None)) is not None:
        GC_PAUSE_SECONDS.labels(generation=str(info.get("generation", "?"))).observe(
            time.perf_counter() - started
        )


# --- the C heap (glibc malloc) ----------------------------------------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]  # fmt: skip


def _glibc() -> ctypes.CDLL | None:
    """glibc's malloc functions (mallinfo2 needs glibc >= 2.33), or None on another C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


@dataclass(frozen=True, slots=True)
class NativeHeap:
    in_use: int
    """Bytes malloc has handed out: C libraries (onnxruntime, SQLite), numpy buffers, Python objects over
    512 bytes (smaller ones live in Python's own arenas)."""
    free: int
    """Bytes in malloc's free chunks, kept for reuse. Their pages stay resident unless they are at the top
    of a heap or :func:`trim_native_heap` gave them back (the figure does not change when it does)."""


def native_heap() -> NativeHeap | None:
    """glibc's malloc totals over all its arenas, or None where glibc is not the C library."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return NativeHeap(in_use=info.uordblks + info.hblkhd, free=info.fordblks)


def trim_native_heap() -> bool:
    """Give the free pages of glibc's heaps back to the OS (``malloc_trim(0)``, also those below the top of
    each heap); True when memory was released. A few ms to a few tens of ms for this server's heap."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))


class NativeHeapCollector(Collector):
    """``voxgate_native_heap_bytes{state}``: glibc malloc's bytes in use and free (one process only; not
    exported by ``serve --workers``)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        heap = native_heap()
        if heap is None:
            return
        family = GaugeMetricFamily(
            "voxgate_native_heap_bytes",
            "glibc malloc heap: 'in_use' is allocated (a leak grows it; so does garbage not yet collected); "
            "'free' is in free chunks kept for reuse (its pages are given back when the server goes idle).",
            labels=["state"],
        )
        family.add_metric(["in_use"], heap.in_use)
        family.add_metric(["free"], heap.free)
        yield family


REGISTRY.register(NativeHeapCollector())
