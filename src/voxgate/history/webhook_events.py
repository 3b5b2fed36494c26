"""Webhook event names and the rules a webhook target obeys (HOSTED.md §6), shared by the REST
subscriptions and the inline ``webhook`` of ``session.update``."""

from __future__ import annotations

from typing import Any

from voxgate.outbound.policy import OutboundPolicy

SESSION_WEBHOOK_EVENTS = ("session.started", "session.completed")
CALL_WEBHOOK_EVENTS = ("call.connected", "call.ended", "call.failed")
"""Sent by the phone-call records (HOSTED.md §7, store/calls.py) when a call connects, ends or fails."""
WEBHOOK_EVENTS = (*SESSION_WEBHOOK_EVENTS, *CALL_WEBHOOK_EVENTS)
MAX_URL_CHARS = 2048
MIN_SECRET_CHARS = 32
MAX_SECRET_CHARS = 512


def url_problem(url: Any, policy: OutboundPolicy) -> str | None:
    if not isinstance(url, str) or not url:
        return "url must be a non-empty string"
    if len(url) > MAX_URL_CHARS:
        return f"url must be at most {MAX_URL_CHARS} characters"
    refusal = policy.url_refusal(url)
    return None if refusal is None else f"url {refusal}"


def events_problem(events: Any) -> str | None:
    if not isinstance(events, list) or not events:
        return "events must be a non-empty list"
    for event in events:
        if event not in WEBHOOK_EVENTS:
            return f"unknown event {str(event)[:64]!r}; expected some of {', '.join(WEBHOOK_EVENTS)}"
    return None


def secret_problem(secret: Any) -> str | None:
    if not isinstance(secret, str) or not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS:
        return f"secret must be a string of {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"
    return None


def webhook_problem(raw: Any, policy: OutboundPolicy) -> str | None:
    """What is wrong with an inline ``webhook: {url, events?, secret?}``, or None."""
    if not isinstance(raw, dict):
        return "webhook must be an object"
    if (problem := url_problem(raw.get("url"), policy)) is not None:
        return problem
    if "events" in raw and (problem := events_problem(raw["events"])) is not None:
        return problem
    if raw.get("secret") is not None and (problem := secret_problem(raw["secret"])) is not None:
        return problem
    return None
