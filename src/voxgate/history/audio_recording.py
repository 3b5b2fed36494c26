"""The ``audio`` artifact: the conversation as it was heard, caller left and agent right, OGG/Opus.

:class:`TwoTrackRecording` places both sides on one clock (samples since the recording started) and
hands finished stretches to :class:`OggOpusWriter` through one encoder thread (:class:`QueuedWriter`: Opus
encoding and file writes never run on the event loop), so memory holds only the last fraction of a
second, whatever the call's length:

- caller audio goes where it arrived: frames follow each other, and a pause of the client's stream
  longer than :data:`CALLER_GAP_SECONDS` becomes silence;
- a reply's audio starts where its first chunk was sent (the client plays it on arrival) and runs on
  from there; audio the engine sent ahead stays pending until the clock reaches it, so a barge-in
  (:meth:`TwoTrackRecording.cut_agent`) drops exactly what was never played;
- the stretch up to the clock minus :data:`FLUSH_DELAY_SECONDS` is written (missing parts as silence).

The writer is PyAV (FFmpeg's libopus and Ogg muxer, already installed with faster-whisper): Ogg pages go
to the file as they fill, so a process that is killed leaves a playable file up to its last page.
A write that fails (a full disk) raises :class:`RecordingFailed`; the recording stops there.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from voxgate.audio.resample import StreamResampler

RECORDING_RATE = 16_000
"""Both channels are resampled to this rate (wideband speech; Opus's 16 kHz mode)."""
RECORDING_BITRATE = 32_000
CALLER_GAP_SECONDS = 0.2
FLUSH_DELAY_SECONDS = 0.3
MAX_BLOCK_SAMPLES = RECORDING_RATE
"""Silence is written in blocks of at most one second (a long pause never allocates its length)."""


class RecordingFailed(Exception):
    """The audio file could not be written (e.g. the disk is full)."""


class OggOpusWriter:
    def __init__(self, path: Path, rate: int = RECORDING_RATE, bitrate: int = RECORDING_BITRATE) -> None:
        try:
            # flush_packets: each finished Ogg page goes to the file at once (nothing waits in a buffer).
            self._container = av.open(
                str(path), "w", format="ogg", options={"flush_packets": "1", "page_duration": "250000"}
            )
            self._stream = self._container.add_stream("libopus", rate=rate, layout="stereo")
            self._stream.bit_rate = bitrate
        except (OSError, av.FFmpegError) as exc:
            raise RecordingFailed(str(exc)) from exc
        self._rate = rate
        self._pts = 0
        self.closed = False

    def write(self, stereo: NDArray[np.int16]) -> None:
        """Encode ``(n, 2)`` int16 samples."""
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(stereo).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += stereo.shape[0]
        self._encode(frame)

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._encode(None)
        finally:
            try:
                self._container.close()
            except (OSError, av.FFmpegError) as exc:
                raise RecordingFailed(str(exc)) from exc

    def abandon(self) -> None:
        """Close without raising (after a failure)."""
        self.closed = True
        try:
            self._container.close()
        except Exception:
            pass

    def _encode(self, frame: av.AudioFrame | None) -> None:
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            raise RecordingFailed(str(exc)) from exc


_ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-encoder")
"""Every recording of the process is encoded and written on this one thread, in order: Opus encoding and
file writes never run on the event loop (a slow disk would stall every session's audio)."""
MAX_PENDING_BLOCKS = 64
"""Blocks (up to a second each) a recording may have waiting for the encoder; beyond, it falls behind and
stops (marked incomplete) rather than growing memory."""


class QueuedWriter:
    """An :class:`OggOpusWriter` fed through the encoder thread. A failure there surfaces as
    :class:`RecordingFailed` on the next call; :meth:`close` waits for the writes before it (call it off the
    event loop)."""

    def __init__(self, writer: OggOpusWriter) -> None:
        self._writer = writer
        self._pending: deque[Future[None]] = deque()
        self._failure: str | None = None

    def write(self, stereo: NDArray[np.int16]) -> None:
        self._raise_failure()
        if len(self._pending) >= MAX_PENDING_BLOCKS:
            self._failure = "the recording fell behind (the disk is too slow)"
            self._raise_failure()
        self._pending.append(_ENCODER.submit(self._writer.write, np.array(stereo, copy=True)))

    def close(self) -> None:
        self._raise_failure()
        _ENCODER.submit(self._writer.close).result()
        self._raise_failure()

    def abandon(self) -> None:
        _ENCODER.submit(self._writer.abandon)  # after the writes already queued; nothing waits for it

    def _raise_failure(self) -> None:
        while self._pending and self._pending[0].done():
            error = self._pending.popleft().exception()
            if error is not None and self._failure is None:
                self._failure = str(error)
        if self._failure is not None:
            raise RecordingFailed(self._failure)


class _Track:
    """One channel's audio not yet written: ``(start_sample, samples)`` pieces in order."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, NDArray[np.int16]]] = []
        self.end = 0

    def add(self, start: int, samples: NDArray[np.int16]) -> None:
        if samples.size:
            self.pieces.append((start, samples))
            self.end = start + samples.size

    def truncate(self, position: int) -> int:
        """Drop every sample at or after ``position``; returns how many were dropped."""
        dropped = 0
        kept: list[tuple[int, NDArray[np.int16]]] = []
        for start, samples in self.pieces:
            if start >= position:
                dropped += samples.size
            elif start + samples.size > position:
                dropped += start + samples.size - position
                kept.append((start, samples[: position - start]))
            else:
                kept.append((start, samples))
        self.pieces = kept
        self.end = min(self.end, position)
        return dropped

    def fill(self, block: NDArray[np.int16], channel: int, block_start: int) -> None:
        """Copy the pieces overlapping the block into it; forget what is now written."""
        block_end = block_start + block.shape[0]
        kept: list[tuple[int, NDArray[np.int16]]] = []
        for start, samples in self.pieces:
            end = start + samples.size
            low, high = max(start, block_start), min(end, block_end)
            if low < high:
                block[low - block_start : high - block_start, channel] = samples[low - start : high - start]
            if end > block_end:
                kept.append((start, samples))
        self.pieces = kept


class TwoTrackRecording:
    """Caller (channel 0) and agent (channel 1) on one clock; see the module docstring."""

    def __init__(
        self,
        writer: OggOpusWriter | QueuedWriter,
        *,
        rate: int = RECORDING_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._rate = rate
        self._clock = clock
        self._origin = clock()
        self._written = 0
        self._caller = _Track()
        self._agent = _Track()
        self._resamplers: dict[tuple[str, int], StreamResampler] = {}
        self._reply_id: str | None = None
        self.failed: str | None = None
        """Why the recording stopped early (the write error), or None."""

    @property
    def seconds(self) -> float:
        return self._written / self._rate

    def position(self, now: float | None = None) -> int:
        """The clock in samples since the recording started."""
        return int(((self._clock() if now is None else now) - self._origin) * self._rate)

    def caller(self, pcm: NDArray[np.int16], rate: int) -> None:
        samples = self._resample("caller", pcm, rate)
        arrived = self.position()
        start = self._caller.end
        if arrived - samples.size - start > CALLER_GAP_SECONDS * self._rate:
            start = arrived - samples.size
        self._caller.add(max(start, self._written), samples)
        self._flush(arrived - int(FLUSH_DELAY_SECONDS * self._rate))

    def agent(self, pcm: NDArray[np.int16], rate: int, reply_id: str) -> None:
        samples = self._resample("agent", pcm, rate)
        now = self.position()
        start = self._agent.end
        if reply_id != self._reply_id:
            self._reply_id = reply_id
            start = max(start, now)
        self._agent.add(max(start, self._written), samples)
        self._flush(now - int(FLUSH_DELAY_SECONDS * self._rate))

    def cut_agent(self) -> float:
        """The agent's audio stops here (a barge-in): what was not played yet is dropped. Returns the
        milliseconds dropped."""
        dropped = self._agent.truncate(max(self.position(), self._written))
        self._reply_id = None
        return dropped * 1000 / self._rate

    def finish(self) -> None:
        """The session ended: unplayed agent audio is dropped, the rest is written, the file closed."""
        if self.failed is not None:
            self._writer.abandon()
            return
        self.cut_agent()
        for (side, _rate), resampler in self._resamplers.items():
            tail = np.asarray(resampler.flush(), dtype=np.int16)
            if side == "caller" and tail.size:  # the agent's tail was never played
                self._caller.add(max(self._caller.end, self._written), tail)
        self._flush(max(self._caller.end, self._agent.end))
        try:
            self._writer.close()
        except RecordingFailed as exc:
            self.failed = str(exc)

    def _resample(self, side: str, pcm: NDArray[np.int16], rate: int) -> NDArray[np.int16]:
        key = (side, rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = StreamResampler(rate, self._rate, dtype=np.int16)
        return np.asarray(resampler.process(pcm), dtype=np.int16)

    def _flush(self, horizon: int) -> None:
        if self.failed is not None:
            self._caller.pieces.clear()
            self._agent.pieces.clear()
            return
        while self._written < horizon:
            size = min(horizon - self._written, MAX_BLOCK_SAMPLES)
            block = np.zeros((size, 2), dtype=np.int16)
            self._caller.fill(block, 0, self._written)
            self._agent.fill(block, 1, self._written)
            try:
                self._writer.write(block)
            except RecordingFailed as exc:
                self.failed = str(exc)
                self._writer.abandon()
                return
            self._written += size
