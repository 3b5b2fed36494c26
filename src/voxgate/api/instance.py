"""One voxgate instance's shared state, attached to the app at start-up (the app's lifespan calls
:func:`start_instance`): session checkpoints in Redis when ``VOXGATE_REDIS_URL`` is set (else in memory),
the :class:`~voxgate.api.draining.SessionDrain` with SIGTERM/SIGINT draining the realtime sessions before the
server's own shutdown begins (:class:`DrainOnSignal`), the idle heap trimmer and, opt-in, memory reports
(:mod:`voxgate.memory_care`), and session history (:mod:`voxgate.history.service`: records, artifacts,
the webhook worker). Everything it opens is closed by the app's shutdown callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI

from voxgate.api.draining import SessionDrain
from voxgate.api.session_slots import session_slots
from voxgate.config import Settings
from voxgate.memory_care import (
    DEBUG_MEMORY_ENV,
    HeapTrimmer,
    collect_and_trim,
    freeze_startup_objects,
    install_memory_dumps,
)
from voxgate.store.secret_box import SecretBox
from voxgate.telemetry.native_heap import native_heap

logger = logging.getLogger(__name__)

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
    if native_heap() is not None:
        trimmer = HeapTrimmer(lambda: session_slots(app.state).in_use, trim=collect_and_trim)
        trimming = asyncio.get_running_loop().create_task(trimmer.run(), name="heap-trim")
        app.state.shutdown_callbacks.append(trimming.cancel)
    if dump_directory := os.environ.get(DEBUG_MEMORY_ENV):
        remove = install_memory_dumps(Path(dump_directory))
        if remove is not None:
            app.state.shutdown_callbacks.append(remove)
    logger.debug("froze %d start-up objects (gc.freeze)", freeze_startup_objects())


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
