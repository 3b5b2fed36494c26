"""Counters of session history: artifacts that could not be written, webhook delivery attempts."""

from __future__ import annotations

from voxgate.telemetry.metrics import HISTORY_FAILURES, WEBHOOK_ATTEMPTS


def count_history_failure(artifact: str) -> None:
    HISTORY_FAILURES.labels(artifact=artifact).inc()


def count_webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
