"""The Prometheus text of ``GET /metrics``: this process's registry, or in multiprocess mode every
worker's files merged (:mod:`voxgate.telemetry.multiprocess`)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, PlatformCollector, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from voxgate.telemetry import metrics  # noqa: F401  (registers every metric and collector)
from voxgate.telemetry.gc_pauses import flush_gc_pauses
from voxgate.telemetry.multiprocess import forget_dead_workers, multiprocess_directory
from voxgate.telemetry.runtime import refresh_runtime_gauges


def exposition() -> bytes:
    """Refresh the run-time gauges, then render every metric (see the module docstring)."""
    refresh_runtime_gauges()
    flush_gc_pauses()
    directory = multiprocess_directory()
    if directory is None:
        return generate_latest(REGISTRY)
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    PlatformCollector(registry=registry)
    return generate_latest(registry)
