"""How the API writes timestamps."""

from __future__ import annotations

from datetime import datetime


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a ``Z`` suffix (RFC 3339)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
