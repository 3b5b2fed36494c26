"""Inputs of a session that are not client events: notices from its transport and its own deadlines.
Plain values (the pure core reads them too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransportClosed:
    """The client went away (the transport can no longer deliver events)."""


@dataclass(frozen=True, slots=True)
class PlayoutAcknowledged:
    """From a transport whose client reports playback (a Twilio ``mark`` echo): the listener has heard the
    first ``played_ms`` milliseconds of reply ``reply_id``. Counts only with
    ``SessionDependencies.acknowledged_playout``; stale or unknown replies are ignored."""

    reply_id: str
    played_ms: float


@dataclass(frozen=True, slots=True)
class DurationExceeded:
    """The session reached its maximum duration."""


@dataclass(frozen=True, slots=True)
class ConfigureDeadline:
    """The configuration deadline passed: ends the connection unless a ``session.update`` or
    ``session.resume`` was accepted (the inputs before this one were handled first)."""

    seconds: float
