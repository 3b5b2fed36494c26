"""One session's input audio path, before turn-taking: decode a client frame, admit it against the
real-time budget, resample it to 16 kHz float32; and notice when the client stops sending (a gap).

This runs for every 20-50 ms frame of every session, so it keeps one resampler per encoding and
allocates only the frame's own arrays. Time is the event loop's monotonic clock: a frame's arrival is
when the transport read it (:meth:`AudioIntake.arrived`), not when the session got to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voxgate.audio.codecs import AudioDecodeError, decode_base64_audio, sample_rate_for
from voxgate.audio.resample import StreamResampler, to_float32
from voxgate.conversation.input_rate import InputRateBudget
from voxgate.conversation.loop_stalls import StallCredit, loop_heartbeat
from voxgate.protocol.errors import ErrorCode
from voxgate.protocol.events import ProtocolError
from voxgate.speech.base import INPUT_SAMPLE_RATE, FloatAudio

GAP_CHECK_SECONDS = 0.1
GAP_THRESHOLD_SECONDS = 0.3


def audio_gap_ms(now: float, woke_late_by: float, last_audio: float, last_report: float) -> float | None:
    """Milliseconds of missing input to count as silence, or None. ``last_audio``: when the client's latest
    frame *arrived* (frames still queued for processing are not a gap). A check that runs late means the
    event loop itself was stalled (a blocking call, a starved CPU): the client's frames may be waiting
    unread in the socket, so no gap is reported until the loop has caught up."""
    if woke_late_by >= GAP_CHECK_SECONDS:
        return None
    since = max(last_audio, last_report)
    if now - last_audio >= GAP_THRESHOLD_SECONDS and now > since:
        return (now - since) * 1000
    return None


@dataclass(frozen=True, slots=True)
class Intake:
    """A frame's outcome: 16 kHz audio for turn-taking (possibly empty), or an error to report."""

    audio: FloatAudio | None = None
    error: ProtocolError | None = None


class AudioIntake:
    def __init__(self, burst_seconds: float, now: float) -> None:
        self.input_rate = InputRateBudget(burst_seconds)
        self.seconds = 0.0
        """Input audio admitted so far."""
        self._decoder: tuple[str, StreamResampler] | None = None
        self._arrivals: deque[float] = deque()
        """Arrival times of the frames read but not yet processed (frame lag, and the rate budget)."""
        self._last_audio = now
        self._last_gap_report = 0.0
        self._stall_credit: StallCredit | None = None
        """This session's share of the event loop's stalls, forgiven by the input-rate budget."""

    def arrived(self, now: float) -> None:
        """The transport read an ``input.audio`` frame (it is queued for the session)."""
        self._arrivals.append(now)
        self._last_audio = now
        if self._stall_credit is None:
            self._stall_credit = StallCredit(loop_heartbeat())
        self.input_rate.forgive(self._stall_credit.new_credit(now), now)

    def processed(self, now: float) -> float | None:
        """The oldest queued frame was handled: seconds since it arrived (the frame lag)."""
        return now - self._arrivals.popleft() if self._arrivals else None

    def accept(self, encoded: str, encoding: str, now: float) -> Intake:
        try:
            pcm = decode_base64_audio(encoding, encoded)
        except AudioDecodeError as exc:
            return Intake(
                error=ProtocolError(
                    ErrorCode.INVALID_AUDIO, f"input.audio could not be decoded: {exc}", "audio"
                )
            )
        if pcm.size == 0:
            return Intake()
        rate = sample_rate_for(encoding)
        arrived = self._arrivals[0] if self._arrivals else now
        admission = self.input_rate.admit(pcm.size / rate, arrived)
        if not admission.admitted:
            if not admission.announce:
                return Intake()
            return Intake(
                error=ProtocolError(
                    ErrorCode.AUDIO_RATE_VIOLATION,
                    "input.audio arrives faster than real time: audio more than "
                    f"{self.input_rate.burst_seconds:g} s ahead of real time is dropped",
                )
            )
        if self._decoder is None or self._decoder[0] != encoding:
            self._decoder = (encoding, StreamResampler(rate, INPUT_SAMPLE_RATE, dtype=np.float32))
        self.seconds += pcm.size / rate
        return Intake(audio=self._decoder[1].process(to_float32(pcm)))

    def gap(self, now: float, woke_late_by: float) -> float | None:
        """Milliseconds of missing input since the last report (see :func:`audio_gap_ms`), or None."""
        gap = audio_gap_ms(now, woke_late_by, self._last_audio, self._last_gap_report)
        if gap is not None:
            self._last_gap_report = now
        return gap
