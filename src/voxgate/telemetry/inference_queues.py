"""How busy the inference executors are: jobs waiting or running per model, over this process's live
:class:`~voxgate.speech.executor.InferenceExecutor` instances (read at scrape time)."""

from __future__ import annotations

from voxgate.speech.executor import EXECUTORS


def inference_queue_depth() -> dict[str, int]:
    """Jobs waiting or running per model, summed over this process's live executors."""
    depth: dict[str, int] = {}
    for executor in list(EXECUTORS):
        depth[executor.name] = depth.get(executor.name, 0) + executor.queue_depth
    return depth
