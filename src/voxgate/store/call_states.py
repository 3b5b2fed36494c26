"""The life of a phone call record (HOSTED.md §7), as a pure transition table.

A call is ``dialing`` from the moment it is placed (outbound) or answered by the voice webhook (inbound)
until its media stream has a session (``active``); it ends ``ended`` (it was connected), ``failed`` (it
never connected: the carrier could not place it, the caller or voxgate hung up first, the stream was
refused) or ``refused`` (the callee did not take it: busy or no answer). The three are final.

Two sources drive it:

- the media-stream bridge: :data:`STREAM_CONNECTED` (the stream's session is ready) and
  :data:`STREAM_ENDED` (the stream is gone);
- Twilio's status callbacks: their ``CallStatus`` (``queued``, ``initiated``, ``ringing``,
  ``in-progress``, ``completed``, ``busy``, ``no-answer``, ``failed``, ``canceled``). Only the final ones
  change a record; ``in-progress`` (answered) does not make a call ``active``: only its stream does.

Both may report the end of the same call, in either order; whichever comes first decides, and the other
changes nothing.
"""

from __future__ import annotations

DIALING, ACTIVE, ENDED, FAILED, REFUSED = "dialing", "active", "ended", "failed", "refused"
CALL_STATUSES = (DIALING, ACTIVE, ENDED, FAILED, REFUSED)
FINAL_STATUSES = frozenset({ENDED, FAILED, REFUSED})
INBOUND, OUTBOUND = "inbound", "outbound"
CALL_DIRECTIONS = (INBOUND, OUTBOUND)

STREAM_CONNECTED = "stream_connected"
STREAM_ENDED = "stream_ended"
CARRIER_REFUSED = "carrier_refused"
"""Twilio's REST API did not accept the call (``POST /v1/calls`` got an error back)."""

TWILIO_NOT_TAKEN = frozenset({"busy", "no-answer"})
TWILIO_NOT_PLACED = frozenset({"failed", "canceled"})
TWILIO_PROGRESS = frozenset({"queued", "initiated", "ringing", "in-progress"})
TWILIO_STATUSES = TWILIO_PROGRESS | TWILIO_NOT_TAKEN | TWILIO_NOT_PLACED | {"completed"}
"""Every ``CallStatus`` Twilio sends; anything else in a status callback is ignored."""

CALL_EVENT_OF_STATUS = {
    ACTIVE: "call.connected",
    ENDED: "call.ended",
    FAILED: "call.failed",
    REFUSED: "call.failed",
}
"""The webhook event that announces a call reaching each status."""


def next_status(current: str, event: str) -> str | None:
    """The status a call in ``current`` moves to on ``event`` (a bridge event or a Twilio
    ``CallStatus``), or None when the event changes nothing."""
    if current in FINAL_STATUSES:
        return None
    connected = current == ACTIVE
    if event == STREAM_CONNECTED:
        return ACTIVE if current == DIALING else None
    if event in (STREAM_ENDED, "completed"):
        return ENDED if connected else FAILED
    if event in TWILIO_NOT_TAKEN:
        return ENDED if connected else REFUSED
    if event in TWILIO_NOT_PLACED or event == CARRIER_REFUSED:
        return ENDED if connected else FAILED
    return None


def direction_of(twilio_direction: str | None) -> str:
    """``inbound`` for Twilio's ``inbound``; ``outbound`` for ``outbound-api``/``outbound-dial``."""
    return OUTBOUND if (twilio_direction or "").startswith("outbound") else INBOUND
