"""``voxgate serve``: one process, or ``workers`` processes sharing one socket (uvicorn's supervisor,
:func:`app_from_environment` as the app factory), which requires state every worker can see: Redis for
sessions (:func:`workers_problem`). The workers also share their metrics through a fresh directory made for
the run (:func:`shared_metrics_directory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from voxgate.config import Settings
from voxgate.store import Store

logger = logging.getLogger(__name__)

METRICS_DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode (voxgate.telemetry.multiprocess); named here so that the
supervisor does not import prometheus-client."""
AFTER_DRAIN_SECONDS = 5
"""What uvicorn still waits for plain HTTP requests once the realtime sessions are drained."""


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
        uvicorn.run("voxgate.serve:app_from_environment", factory=True, workers=workers, **options)


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
