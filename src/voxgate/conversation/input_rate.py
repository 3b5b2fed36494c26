"""Input audio pacing (PROTOCOL.md §5.3, §12): ``input.audio`` may run ahead of real time only by a burst.

:class:`InputRateBudget` is a token bucket counted in seconds of audio. It starts full at
``burst_seconds`` when the first frame arrives and refills at one second per second of wall clock between
frame arrivals, never above ``burst_seconds``. A frame is admitted while the bucket is positive and takes
its whole duration from it (the bucket may go below zero by at most that one frame, so any chunk size
works); otherwise it is dropped. A client streaming in real time never empties it, whatever its chunk size,
and a stall of up to ``burst_seconds`` followed by a catch-up (network jitter, a reconnect) fits too.

Arrival is when the session's receive loop reads the frame, so a stall of the server's own event loop
would make frames sent in real time look like a burst. The session therefore passes each stall's length
to :meth:`InputRateBudget.forgive` (measured by ``conversation.loop_stalls``): the bucket may then hold
that much more than ``burst_seconds`` for the frames read right after the stall, and the excess lapses
:data:`STALL_CATCH_UP_SECONDS` later, so it cannot be saved up.

Drops less than :data:`VIOLATION_EPISODE_GAP_SECONDS` apart form one *violation episode*; only the first
drop of an episode is to be announced (one ``audio_rate_violation``), so a flood costs one error, not one
per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

VIOLATION_EPISODE_GAP_SECONDS = 5.0
"""Wall-clock time without a dropped frame after which the next drop starts a new violation episode."""
STALL_CATCH_UP_SECONDS = 0.5
"""How long after a server stall its credit may still be spent (the delayed frames are read at once)."""
EMPTY_BELOW_SECONDS = 1e-9
"""The bucket counts as empty below this (float sums of frame durations are not exact)."""


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    """The frame fits the budget: process it. False: drop it."""
    announce: bool = False
    """The frame is the first drop of a violation episode: tell the client (``audio_rate_violation``)."""


class InputRateBudget:
    def __init__(self, burst_seconds: float) -> None:
        """``burst_seconds``: ``Settings.input_rate_burst_seconds`` (``VOXGATE_INPUT_RATE_BURST_SECONDS``)."""
        if burst_seconds <= 0:
            raise ValueError("burst_seconds must be positive")
        self.burst_seconds = burst_seconds
        self.dropped_seconds = 0.0
        """Audio dropped so far (all episodes)."""
        self.episodes = 0
        """Violation episodes so far."""
        self._level = burst_seconds
        self._last_arrival: float | None = None
        self._last_drop: float | None = None
        self._excess_until = float("-inf")
        self.forgiven_seconds = 0.0
        """Server stall time credited so far."""

    def forgive(self, seconds: float, now: float) -> None:
        """The server could not read input for ``seconds`` until ``now`` (monotonic): frames read just
        after were delayed by the server, not sent early. Credit the time the bucket's cap withheld."""
        if seconds <= 0:
            return
        self._level += seconds
        self._excess_until = now + STALL_CATCH_UP_SECONDS
        self.forgiven_seconds += seconds

    def admit(self, duration_seconds: float, arrived_at: float) -> Admission:
        """Decide on one frame of ``duration_seconds`` of audio that arrived at ``arrived_at`` (monotonic
        seconds; arrivals are taken in order, an earlier time than the last counts as the last)."""
        if self._last_arrival is None:
            self._last_arrival = arrived_at
        elif arrived_at > self._last_arrival:
            if self._level < self.burst_seconds:
                self._level = min(self.burst_seconds, self._level + (arrived_at - self._last_arrival))
            self._last_arrival = arrived_at
        if self._level > self.burst_seconds and arrived_at > self._excess_until:
            self._level = self.burst_seconds  # a stall's credit not spent in its catch-up lapses
        if self._level > EMPTY_BELOW_SECONDS:
            self._level -= duration_seconds
            return Admission(admitted=True)
        now = self._last_arrival
        announce = self._last_drop is None or now - self._last_drop >= VIOLATION_EPISODE_GAP_SECONDS
        self._last_drop = now
        self.dropped_seconds += duration_seconds
        if announce:
            self.episodes += 1
        return Admission(admitted=False, announce=announce)
