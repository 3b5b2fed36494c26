"""Every metric the server exports, registered on prometheus-client's default registry (which also carries
the process collector: ``process_resident_memory_bytes``, ``process_open_fds``, ``process_cpu_seconds_total``,
read by the soak benchmark). The modules of this package feed them; ``GET /metrics`` renders them
(:mod:`voxgate.telemetry.exposition`).

Two figures are computed at scrape time by collectors registered here: the inference queue depth per
model and glibc's C heap. Each gauge declares its ``multiprocess_mode`` for ``voxgate serve --workers N``
(:mod:`voxgate.telemetry.multiprocess`): ``livesum`` is the sum over the live workers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voxgate.telemetry.inference_queues import inference_queue_depth
from voxgate.telemetry.native_heap import native_heap

STAGE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Frame and event-loop lag; 0.05 is a boundary so "p99 < 50 ms" reads exactly off the buckets."""

# --- per-turn stages (voxgate.telemetry.turn_stages) -------------------------------------------------
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

# --- sessions and errors (voxgate.telemetry.session_meter) -------------------------------------------
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

# --- session history and webhooks -----------------------------------------------------------------------
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

# --- input path, inference, runtime --------------------------------------------------------------------
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

INFERENCE_QUEUE_DEPTH_HELP = "Inference jobs submitted and not finished (waiting plus running), per model."


class InferenceQueueCollector(Collector):
    """``voxgate_inference_queue_depth{model}``: jobs waiting or running, summed over the live executors.

    One process only; in multiprocess mode the same figure comes from
    :class:`~voxgate.telemetry.multiprocess.WorkerFigures`."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "voxgate_inference_queue_depth", INFERENCE_QUEUE_DEPTH_HELP, labels=["model"]
        )
        for model, value in sorted(inference_queue_depth().items()):
            family.add_metric([model], value)
        yield family


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


REGISTRY.register(InferenceQueueCollector())
REGISTRY.register(NativeHeapCollector())
