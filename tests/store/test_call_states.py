"""The call status rules (store/call_states.py), one row per (status, event)."""

from __future__ import annotations

import pytest

from voxgate.store.call_states import (
    ACTIVE,
    CARRIER_REFUSED,
    DIALING,
    ENDED,
    FAILED,
    REFUSED,
    STREAM_CONNECTED,
    STREAM_ENDED,
    direction_of,
    next_status,
)

TRANSITIONS = [
    # a call being placed or answered
    (DIALING, "queued", None),
    (DIALING, "initiated", None),
    (DIALING, "ringing", None),
    (DIALING, "in-progress", None),  # answered: only its stream makes it active
    (DIALING, STREAM_CONNECTED, ACTIVE),
    (DIALING, STREAM_ENDED, FAILED),  # the stream never had a session
    (DIALING, "completed", FAILED),  # answered, but hung up before the stream connected
    (DIALING, "busy", REFUSED),
    (DIALING, "no-answer", REFUSED),
    (DIALING, "failed", FAILED),
    (DIALING, "canceled", FAILED),
    (DIALING, CARRIER_REFUSED, FAILED),
    (DIALING, "something-new", None),
    # a connected call
    (ACTIVE, STREAM_CONNECTED, None),
    (ACTIVE, "in-progress", None),
    (ACTIVE, STREAM_ENDED, ENDED),
    (ACTIVE, "completed", ENDED),
    (ACTIVE, "busy", ENDED),
    (ACTIVE, "failed", ENDED),
    # final statuses never change: the first report of the end decides
    (ENDED, "completed", None),
    (ENDED, STREAM_ENDED, None),
    (FAILED, STREAM_CONNECTED, None),
    (FAILED, "completed", None),
    (REFUSED, STREAM_ENDED, None),
    (REFUSED, "failed", None),
]


@pytest.mark.parametrize(("current", "event", "expected"), TRANSITIONS)
def test_transition(current: str, event: str, expected: str | None) -> None:
    assert next_status(current, event) == expected


@pytest.mark.parametrize(
    ("twilio", "expected"),
    [("inbound", "inbound"), ("outbound-api", "outbound"), ("outbound-dial", "outbound"), (None, "inbound")],
)
def test_direction(twilio: str | None, expected: str) -> None:
    assert direction_of(twilio) == expected
