"""A bounded executor per model: inference runs in its own worker thread(s), never on the event loop.

Each model gets one ``InferenceExecutor`` with an explicit thread count, so a queue forms in front of
the model instead of several inferences fighting over 2 cores. Cancelling the awaiting task before the
job starts means the job never runs; a job already running finishes in its thread (its result is
dropped). ``stats()`` feeds the metrics endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

EXECUTORS: weakref.WeakSet[InferenceExecutor] = weakref.WeakSet()
"""Every live executor (the metrics collector reads their queue depth)."""
WAIT_OBSERVERS: list[Callable[[str, float], None]] = []
"""Called (in the worker thread) with the executor name and the seconds a job waited before it started."""


class InferenceExecutor:
    """``threads`` worker threads dedicated to one model, with queue-depth and wait-time statistics."""

    def __init__(self, name: str, *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"InferenceExecutor {name!r}: threads must be >= 1, got {threads}")
        self.name = name
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"voxgate-{name}")
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._count = 0
        self._wait_last = 0.0
        self._wait_total = 0.0
        self._wait_max = 0.0
        EXECUTORS.add(self)

    @property
    def queue_depth(self) -> int:
        """Jobs submitted and not finished: waiting for a worker plus running."""
        with self._lock:
            return self._waiting + self._running

    @property
    def busy(self) -> bool:
        return self.queue_depth > 0

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread and await its result."""
        submitted = time.perf_counter()
        abandoned = threading.Event()
        call = functools.partial(fn, *args, **kwargs)

        def job() -> T:
            with self._lock:
                self._waiting -= 1
                if abandoned.is_set():
                    return None  # type: ignore[return-value]  # the awaiting task is gone
                wait = time.perf_counter() - submitted
                self._running += 1
                self._count += 1
                self._wait_last = wait
                self._wait_total += wait
                self._wait_max = max(self._wait_max, wait)
            for observer in WAIT_OBSERVERS:
                with contextlib.suppress(Exception):
                    observer(self.name, wait)
            try:
                return call()
            finally:
                with self._lock:
                    self._running -= 1

        with self._lock:
            self._waiting += 1
        try:
            future: Future[T] = self._pool.submit(job)
        except BaseException:
            with self._lock:
                self._waiting -= 1
            raise
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            abandoned.set()
            if future.cancel():  # never started: undo the waiting count the job would have undone
                with self._lock:
                    self._waiting -= 1
            raise

    def stats(self) -> dict[str, Any]:
        with self._lock:
            count = self._count
            return {
                "name": self.name,
                "threads": self.threads,
                "count": count,
                "queue_depth": self._waiting + self._running,
                "waiting": self._waiting,
                "running": self._running,
                "last_wait_seconds": self._wait_last,
                "avg_wait_seconds": self._wait_total / count if count else 0.0,
                "max_wait_seconds": self._wait_max,
            }

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop accepting jobs; queued jobs are cancelled, running ones finish in their thread."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


class ForegroundWork:
    """Inference a listener is waiting for right now goes ahead of inference that is merely ahead.

    On a 2-core machine the embedded LLM (two threads) and Piper compete for the cores: Piper rendering
    the first chunk of a reply took ~145 ms instead of ~95 ms while the LLM went on writing the rest of the
    reply, text that will not be spoken for seconds (it writes ~6 words a second; speech needs ~3). So
    speech synthesis marks itself foreground (:meth:`running`) and the LLM, between two tokens, waits
    while any is running (:meth:`yield_to`), at most ``max_wait`` seconds per token so that a saturated
    TTS never stalls the LLM. Thread-safe: both sides run in executor worker threads.
    """

    def __init__(self) -> None:
        self._active = 0
        self._idle = threading.Condition()
        self.yielded_seconds = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if not self._active:
                    self._idle.notify_all()

    def yield_to(self, max_wait: float) -> None:
        """Block (in a worker thread) while foreground work runs, for at most ``max_wait`` seconds."""
        with self._idle:
            if not self._active:
                return
            started = time.perf_counter()
            self._idle.wait_for(lambda: not self._active, timeout=max_wait)
            self.yielded_seconds += time.perf_counter() - started


FOREGROUND = ForegroundWork()
"""The process's one foreground gate: speech synthesis runs in it, LLM generation yields to it."""
