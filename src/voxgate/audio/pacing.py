"""Output pacing and the playout clock.

The agent's speech is produced faster than real time (TTS runs at a fraction of real time), but a
client plays whatever it receives at once and buffers the rest. If the server sent a whole reply
in one burst, a barge-in could not silence the agent: the client would keep playing seconds of
buffered audio. So replies are paced: :class:`OutputPacer` hands out fixed-size chunks no faster
than real time, keeping at most ``lead_ms`` of audio buffered at the client, and
:class:`PlayoutClock` estimates how much of what was sent the listener has actually heard (so
an interrupted reply's transcript can be trimmed to what was played).

How the conversation engine uses them, one pacer per reply::

    pacer = OutputPacer(sample_rate_for(output_encoding), chunk_ms=50, lead_ms=150)

    async def produce() -> None:              # task 1: TTS -> resample -> pacer
        async for pcm in tts.synthesize(sentence, voice_id=voice):
            pacer.feed(resampler.process(pcm))  # never blocks; audio is queued
        pacer.feed(resampler.flush())
        pacer.finish()                          # the last, shorter chunk may now go out

    async for chunk in pacer:                   # task 2 (the reply task): paced chunks
        chunk = apply_volume(chunk, volume)
        await sink(ReplyAudio(data=b64(encode_audio(output_encoding, chunk))))
    # the loop ends after finish() once everything was handed out, or after stop()

    # on barge-in, from anywhere:
    heard_ms = pacer.stop()                     # nothing more is handed out; returns ms heard
    # pacer.sent_ms / pacer.played_ms() can be read at any moment

Each chunk returned by the iterator is recorded as sent at that instant, so send it right away.
Cancelling the task that iterates is also safe at any ``await``: no chunk is lost or counted
twice. A Twilio bridge that learns real playback from ``mark`` acknowledgements creates the
clock with ``PlayoutClock(acknowledged=True)``, passes it to the pacer, and calls
``clock.acknowledge(ms)`` when a mark comes back; pacing still follows the real-time estimate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from numpy.typing import NDArray

TimeSource = Callable[[], float]
"""Returns monotonic seconds (``time.monotonic`` by default; injectable for tests)."""
Sleep = Callable[[float], Awaitable[None]]
"""Sleeps for the given seconds (``asyncio.sleep`` by default; injectable for tests)."""

_TOLERANCE_MS = 1e-6  # float rounding slack when comparing release times


class PlayoutClock:
    """Tracks audio handed to one listener and estimates how much of it has been heard.

    The estimate models a client that starts playing each chunk as soon as it arrives and plays
    continuously: every chunk is appended to the client's buffer, which drains in real time, so
    ``played = sent - still_buffered``. With gap-free sending from time ``t0`` this equals
    ``min(sent_ms, now - t0)``; when the sender falls behind (TTS slower than real time), the
    playhead waits at the end of the buffer instead of running ahead of the audio.

    In ``acknowledged`` mode (Twilio ``mark`` events) :meth:`played_ms` reports only what the
    client acknowledged through :meth:`acknowledge`; :meth:`estimated_played_ms` still gives the
    time-based estimate, which is what pacing uses.
    """

    def __init__(self, *, time_source: TimeSource = time.monotonic, acknowledged: bool = False) -> None:
        self._now = time_source
        self.acknowledged = acknowledged
        self._sent_ms = 0.0
        self._buffer_end: float | None = None  # time at which the client's buffer runs dry
        self._acknowledged_ms = 0.0
        self._interrupted = False

    def now(self) -> float:
        """The clock's current time in seconds (its time source)."""
        return self._now()

    @property
    def sent_ms(self) -> float:
        """Milliseconds of audio handed to the client (after an interruption: what was heard)."""
        return self._sent_ms

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def record_sent(self, duration_ms: float, now: float | None = None) -> None:
        """Record ``duration_ms`` of audio handed to the client at ``now``. Ignored once interrupted."""
        if duration_ms < 0:
            raise ValueError(f"duration_ms must be non-negative, got {duration_ms}")
        if self._interrupted:
            return
        now = self._now() if now is None else now
        start = now if self._buffer_end is None else max(self._buffer_end, now)
        self._buffer_end = start + duration_ms / 1000.0
        self._sent_ms += duration_ms

    def buffered_ms(self, now: float | None = None) -> float:
        """Estimated milliseconds sent but not yet played (the client's buffer)."""
        if self._buffer_end is None:
            return 0.0
        now = self._now() if now is None else now
        return min(self._sent_ms, max(0.0, (self._buffer_end - now) * 1000.0))

    def estimated_played_ms(self, now: float | None = None) -> float:
        """Time-based estimate of the milliseconds heard so far."""
        return self._sent_ms - self.buffered_ms(now)

    def played_ms(self, now: float | None = None) -> float:
        """Milliseconds heard so far: acknowledged ms in ``acknowledged`` mode, else the estimate."""
        if self.acknowledged:
            return min(self._acknowledged_ms, self._sent_ms)
        return self.estimated_played_ms(now)

    def playback_end(self) -> float | None:
        """Estimated time (time-source seconds) at which the client runs out of audio, if any was sent."""
        return self._buffer_end

    def acknowledge(self, played_until_ms: float) -> None:
        """The client reports it has played the first ``played_until_ms`` ms (e.g. a Twilio mark).

        Positions are absolute within this clock's audio, so repeated or out-of-order marks are
        harmless: the position only moves forward. Ignored after :meth:`interrupt`.
        """
        if self._interrupted:
            return
        self._acknowledged_ms = max(self._acknowledged_ms, min(played_until_ms, self._sent_ms))

    def interrupt(self, now: float | None = None) -> float:
        """The client flushed its buffer (barge-in): freeze at what was heard and return it in ms.

        Afterwards ``sent_ms == played_ms()`` and further sends and acknowledgements are ignored
        until :meth:`reset`.
        """
        if self._interrupted:
            return self._sent_ms
        heard = self.played_ms(now)
        self._sent_ms = heard
        self._acknowledged_ms = heard
        self._buffer_end = self._now() if now is None else now
        self._interrupted = True
        return heard

    def reset(self) -> None:
        """Forget everything: the clock starts again at zero (e.g. for a new reply)."""
        self._sent_ms = 0.0
        self._buffer_end = None
        self._acknowledged_ms = 0.0
        self._interrupted = False


class OutputPacer:
    """Slices int16 PCM into ``chunk_ms`` chunks and releases them at real-time pace.

    Audio is queued with :meth:`feed` (from any task, never blocks) and taken with ``async for``
    (or :meth:`next_chunk`). A chunk is released once the client's estimated buffer after
    receiving it stays within ``max(lead_ms, chunk_ms)``: the first ``lead_ms`` go out at once,
    then one chunk every ``chunk_ms``. Shorter chunks go out only at the end of the audio
    (after :meth:`finish`) or when the client would otherwise run dry while the producer lags.
    :meth:`stop` ends the stream at once, dropping unsent audio.

    Waiting uses an :class:`asyncio.Event` (woken by ``feed``/``finish``/``stop``) raced against
    ``sleep`` until the next release time, so there is no polling; every wait is cancellable.
    Full chunks are views into the fed arrays where possible (a copy is made only when a chunk
    spans two fed arrays), so callers must not modify arrays after feeding them.
    """

    def __init__(
        self,
        sample_rate: int,
        chunk_ms: float = 50,
        lead_ms: float = 150,
        *,
        clock: PlayoutClock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        if lead_ms < 0:
            raise ValueError(f"lead_ms must be non-negative, got {lead_ms}")
        self.sample_rate = sample_rate
        self.chunk_samples = max(1, round(sample_rate * chunk_ms / 1000))
        self.chunk_ms = self.chunk_samples * 1000 / sample_rate
        self.lead_ms = float(lead_ms)
        self.clock = clock if clock is not None else PlayoutClock()
        self._sleep = sleep
        self._pending: deque[NDArray[np.int16]] = deque()
        self._head_offset = 0  # samples of _pending[0] already handed out
        self._pending_samples = 0
        self._finished = False
        self._stopped = False
        self._wakeup = asyncio.Event()

    # -- producer side ---------------------------------------------------------------------------

    def feed(self, pcm: NDArray[np.int16]) -> None:
        """Queue mono int16 samples at ``sample_rate``. Ignored after :meth:`stop`."""
        if self._stopped:
            return
        if self._finished:
            raise RuntimeError("OutputPacer.feed() after finish()")
        samples = np.asarray(pcm)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise TypeError(f"OutputPacer takes 1-D int16 samples, got {samples.dtype} {samples.shape}")
        if samples.size == 0:
            return
        self._pending.append(samples)
        self._pending_samples += samples.size
        self._wakeup.set()

    def finish(self) -> None:
        """No more audio will be fed; the iterator ends once the queue is drained."""
        self._finished = True
        self._wakeup.set()

    def stop(self) -> float:
        """Stop now (barge-in / cancel): drop unsent audio, end iteration, freeze the clock.

        Returns the milliseconds the listener heard, per :meth:`PlayoutClock.interrupt`.
        """
        self._stopped = True
        self._pending.clear()
        self._pending_samples = 0
        self._head_offset = 0
        self._wakeup.set()
        return self.clock.interrupt()

    # -- state -----------------------------------------------------------------------------------

    @property
    def sent_ms(self) -> float:
        """Milliseconds of audio handed out so far."""
        return self.clock.sent_ms

    def played_ms(self) -> float:
        """Milliseconds the listener has heard so far (see :class:`PlayoutClock`)."""
        return self.clock.played_ms()

    @property
    def pending_ms(self) -> float:
        """Milliseconds fed but not yet handed out."""
        return self._pending_samples * 1000 / self.sample_rate

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def done(self) -> bool:
        """True when nothing more will be handed out (stopped, or finished and drained)."""
        return self._stopped or (self._finished and self._pending_samples == 0)

    # -- consumer side ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[NDArray[np.int16]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[NDArray[np.int16]]:
        while (chunk := await self.next_chunk()) is not None:
            yield chunk

    async def next_chunk(self) -> NDArray[np.int16] | None:
        """Wait for the next chunk and its release time; ``None`` once :attr:`done`.

        The returned chunk is recorded on the clock as sent at the moment of return.
        """
        while True:
            self._wakeup.clear()
            if self.done:
                return None
            now = self.clock.now()
            buffered_ms = self.clock.buffered_ms(now)
            full = self._pending_samples >= self.chunk_samples
            if full or (self._pending_samples and (self._finished or buffered_ms <= 0)):
                take = min(self.chunk_samples, self._pending_samples)
                take_ms = take * 1000 / self.sample_rate
                wait_ms = buffered_ms + take_ms - max(self.lead_ms, take_ms)
                if wait_ms <= _TOLERANCE_MS:
                    chunk = self._take(take)
                    self.clock.record_sent(take_ms, now)
                    return chunk
                await self._wait(wait_ms / 1000)
            elif self._pending_samples:
                # A partial chunk and more audio may come: wait for it, but no longer than the
                # moment the client's buffer runs dry, then send the partial chunk.
                await self._wait(buffered_ms / 1000)
            else:
                await self._wait(None)

    async def wait_played(self) -> None:
        """Wait until the listener has (by the estimate) heard everything handed out so far."""
        while not self._stopped:
            self._wakeup.clear()
            remaining_ms = self.clock.buffered_ms()
            if remaining_ms <= 0:
                return
            await self._wait(remaining_ms / 1000)

    def _take(self, count: int) -> NDArray[np.int16]:
        head = self._pending[0]
        available = head.size - self._head_offset
        if available >= count:
            chunk = head[self._head_offset : self._head_offset + count]
            self._head_offset += count
            if self._head_offset == head.size:
                self._pending.popleft()
                self._head_offset = 0
        else:
            chunk = np.empty(count, dtype=np.int16)
            filled = 0
            while filled < count:
                head = self._pending[0]
                part = min(count - filled, head.size - self._head_offset)
                chunk[filled : filled + part] = head[self._head_offset : self._head_offset + part]
                filled += part
                self._head_offset += part
                if self._head_offset == head.size:
                    self._pending.popleft()
                    self._head_offset = 0
        self._pending_samples -= count
        return chunk

    async def _wait(self, timeout_s: float | None) -> None:
        """Wait for feed/finish/stop, or at most ``timeout_s`` seconds (``None``: no limit)."""
        if timeout_s is None:
            await self._wakeup.wait()
            return
        if timeout_s <= 0:
            return
        woken = asyncio.ensure_future(self._wakeup.wait())
        slept = asyncio.ensure_future(self._sleep(timeout_s))
        try:
            await asyncio.wait((woken, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            slept.cancel()
