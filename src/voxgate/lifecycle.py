"""One voxgate instance's life: shared session state at start-up, drain on SIGTERM, several workers.

- :func:`start_instance` (called by the app's lifespan) puts session checkpoints in Redis when
  ``VOXGATE_REDIS_URL`` is set (else they stay in memory), starts session history
  (:mod:`voxgate.history.service`: records, artifacts, the webhook worker), creates the app's
  :class:`~voxgate.api.draining.SessionDrain` and makes SIGTERM/SIGINT drain the realtime sessions
  before the server's own shutdown begins. It starts the :class:`HeapTrimmer` (free C-heap pages go back
  to the OS when the server goes idle) and, opt-in, memory reports on SIGUSR2 (:data:`DEBUG_MEMORY_ENV`).
  Everything it opens is closed by the app's shutdown callbacks.
- :func:`run_server` is ``voxgate serve``: one process, or ``workers`` processes sharing one socket
  (uvicorn's supervisor, :func:`app_from_environment` as the app factory), which requires state every
  worker can see: Redis for sessions (:func:`workers_problem`). The workers also share their metrics
  through a fresh directory made for the run (:func:`shared_metrics_directory`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import itertools
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI

from voxgate.api.draining import SessionDrain
from voxgate.api.session_slots import session_slots
from voxgate.config import Settings
from voxgate.store import Store
from voxgate.store.secret_box import SecretBox

logger = logging.getLogger(__name__)

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
METRICS_DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode (voxgate.observability); named here so that the supervisor does
not import prometheus-client."""
AFTER_DRAIN_SECONDS = 5
"""What uvicorn still waits for plain HTTP requests once the realtime sessions are drained."""


# --- start-up ---------------------------------------------------------------------------------------
async def start_instance(app: FastAPI) -> None:
    """Attach this instance's session state and drain to ``app.state`` (see the module docstring)."""
    settings: Settings = app.state.settings
    if settings.redis_url:
        from voxgate.store.redis_state import RedisCheckpointStore, connect_redis, instance_owner_token

        store = RedisCheckpointStore(
            connect_redis(settings.redis_url),
            SecretBox.from_settings(settings.secret_key, settings.data_dir),
            owner=instance_owner_token(settings.instance_id),
            grace_seconds=settings.resume_grace_seconds,
            lease_seconds=settings.session_lease_seconds,
            key_prefix=settings.redis_key_prefix,
        )
        try:
            await store.ping()
        except Exception as exc:  # not fatal: sessions report internal_error until Redis answers
            logger.error("Redis does not answer at start-up (%s); sessions will not be resumable yet", exc)
        store.start()
        app.state.checkpoints = store
        app.state.shutdown_callbacks.append(store.close)
        if not settings.secret_key:
            logger.warning(
                "VOXGATE_REDIS_URL is set but VOXGATE_SECRET_KEY is not: instances with different data "
                "directories cannot decrypt each other's agents or session checkpoints"
            )
    from voxgate.history.service import start_history

    await start_history(app)  # session records, artifacts, the webhook worker
    drain = SessionDrain(settings.drain_seconds)
    app.state.drain = drain
    handler = DrainOnSignal(drain)
    if handler.install():
        app.state.shutdown_callbacks.append(handler.restore)
    from voxgate import observability  # not at import: the supervisor must not import prometheus-client

    if observability.native_heap() is not None:
        trimmer = HeapTrimmer(lambda: session_slots(app.state).in_use, trim=collect_and_trim)
        trimming = asyncio.get_running_loop().create_task(trimmer.run(), name="heap-trim")
        app.state.shutdown_callbacks.append(trimming.cancel)
    if dump_directory := os.environ.get(DEBUG_MEMORY_ENV):
        remove = install_memory_dumps(Path(dump_directory))
        if remove is not None:
            app.state.shutdown_callbacks.append(remove)
    logger.debug("froze %d start-up objects (gc.freeze)", freeze_startup_objects())


# --- memory -----------------------------------------------------------------------------------------
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
    from voxgate import observability

    gc.collect()
    return observability.trim_native_heap()


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
    from voxgate import observability

    gc.collect()
    counts = collections.Counter(
        f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in gc.get_objects()
    )
    heap = observability.native_heap()
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


class DrainOnSignal:
    """SIGTERM/SIGINT first drain the sessions, then reach the handler that was installed before
    (uvicorn's, which stops the server). A second signal during the drain is passed on at once."""

    def __init__(self, drain: SessionDrain) -> None:
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Install on the main thread (signals can only be handled there); False elsewhere."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        for sig in DRAIN_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return True

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        assert self._loop is not None
        if self._task is not None:
            self._pass_on(sig)
            return
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        if self._task is not None:
            return
        logger.info("received %s: draining realtime sessions", signal.Signals(sig).name)
        self._task = asyncio.get_running_loop().create_task(self._drain.drain(), name="drain")
        self._task.add_done_callback(lambda _task: self._pass_on(sig))

    def _pass_on(self, sig: int) -> None:
        if not self._previous:
            return
        self.restore()
        signal.raise_signal(sig)


# --- serving ----------------------------------------------------------------------------------------
def app_from_environment() -> FastAPI:
    """App factory for worker processes: settings from the environment (``VOXGATE_*``)."""
    from voxgate.api.app import create_app

    return create_app(Settings())


def workers_problem(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` processes cannot share this configuration, or None."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers > 1 and not settings.redis_url:
        return (
            f"--workers {workers} needs state every worker can see: session checkpoints are in memory "
            "without VOXGATE_REDIS_URL, so a session could not be resumed on another worker. Set "
            "VOXGATE_REDIS_URL=redis://... (and VOXGATE_DATABASE_URL=postgresql+asyncpg://... for more "
            "than one machine), or run one worker."
        )
    return None


def run_server(settings: Settings, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT (then drain, see :func:`start_instance`)."""
    import uvicorn

    from voxgate.api.connection_deadlines import uvicorn_connection_options
    from voxgate.api.log_redaction import redacting_log_config

    problem = workers_problem(settings, workers)
    if problem is not None:
        raise ValueError(problem)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": _with_voxgate_logger(redacting_log_config(), settings.log_level),
        "lifespan": "on",
        "timeout_graceful_shutdown": AFTER_DRAIN_SECONDS,
        **uvicorn_connection_options(settings),
    }
    if workers == 1:
        from voxgate.api.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # Migrate and create the first key once, here, so that the workers do not race for it.
    asyncio.run(_prepare_database(settings))
    with shared_metrics_directory():
        uvicorn.run("voxgate.lifecycle:app_from_environment", factory=True, workers=workers, **options)


@contextlib.contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """A fresh, empty directory for the workers' metric files, in ``PROMETHEUS_MULTIPROC_DIR`` while the
    block runs (the workers are spawned inside it and inherit it), then removed. One per server run, so
    no count of an earlier run survives; it is made under ``TMPDIR`` (default ``/tmp``)."""
    previous = os.environ.get(METRICS_DIRECTORY_ENV)
    if previous:
        logger.warning(
            "%s=%s is ignored: voxgate serve --workers makes a fresh directory for each run",
            METRICS_DIRECTORY_ENV,
            previous,
        )
    directory = tempfile.mkdtemp(prefix="voxgate-metrics-")
    os.environ[METRICS_DIRECTORY_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(METRICS_DIRECTORY_ENV, None)
        else:
            os.environ[METRICS_DIRECTORY_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def _with_voxgate_logger(config: dict[str, Any], level: str) -> dict[str, Any]:
    """uvicorn's log config (one-time tokens in URLs masked, token=***) plus voxgate's own loggers, e.g. one
    ``turn {...}`` line per turn from ``voxgate.turns``, printed to stderr in every worker."""
    from voxgate.api.log_redaction import FILTER_NAME

    config["formatters"]["voxgate"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["voxgate"] = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "voxgate",
        "filters": [FILTER_NAME],
    }
    config.setdefault("loggers", {})["voxgate"] = {
        "handlers": ["voxgate"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


async def _prepare_database(settings: Settings) -> None:
    store = await Store.open(settings)
    try:
        created = await store.keys.ensure_initial_key(settings.api_key)
        if created is not None:
            notice = "voxgate: created the first API key (shown only this once; store it now):"
            print(f"\n{notice}\n    {created}\n", flush=True)
    finally:
        await store.close()
