"""Output pacer and playout clock, driven by injected virtual time (no real sleeping)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voxgate.audio import OutputPacer, PlayoutClock

RATE = 24_000
CHUNK = 1_200  # 50 ms at 24 kHz


class AutoTime:
    """Virtual time for one waiting task: sleeping advances the clock by exactly that long."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ManualTime:
    """Virtual time the test moves: sleepers block until the test wakes them."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._sleepers.put((self.now + seconds, future))
        await future

    async def next_sleeper(self) -> tuple[float, asyncio.Future[None]]:
        """Wait until the code under test starts a sleep that is still pending."""
        while True:
            deadline, future = await self._sleepers.get()
            if not future.done():
                return deadline, future

    def wake(self, deadline: float, future: asyncio.Future[None]) -> None:
        self.now = deadline
        future.set_result(None)


def ramp(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + n) % 20_000) - 10_000).astype(np.int16)


def make_pacer(time_source: AutoTime | ManualTime, **kwargs: float) -> OutputPacer:
    clock = PlayoutClock(time_source=time_source.time)
    return OutputPacer(RATE, clock=clock, sleep=time_source.sleep, **kwargs)


async def drain(pacer: OutputPacer, t: AutoTime) -> list[tuple[float, np.ndarray]]:
    return [(t.now, chunk) async for chunk in pacer]


async def test_chunks_are_chunk_ms_long_and_reassemble_the_input() -> None:
    t = AutoTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    audio = ramp(29_617)
    for piece in np.split(audio, [1, 700, 3_701, 3_702, 20_000]):
        pacer.feed(piece)
    pacer.finish()
    chunks = [chunk for _, chunk in await drain(pacer, t)]
    assert [c.size for c in chunks[:-1]] == [CHUNK] * (29_617 // CHUNK)
    assert chunks[-1].size == 29_617 % CHUNK
    assert all(c.dtype == np.int16 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), audio)
    assert pacer.sent_ms == pytest.approx(29_617 / 24)
    assert pacer.done


async def test_releases_lead_at_once_then_one_chunk_per_chunk_ms() -> None:
    t = AutoTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    pacer.feed(ramp(CHUNK * 10))
    pacer.finish()
    times = [when for when, _ in await drain(pacer, t)]
    assert times == pytest.approx([0.0, 0.0, 0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35])
    # the client never holds more than the lead
    assert max(10 * 50 - when * 1000 for when in times) <= 500
    assert pacer.clock.buffered_ms(t.now) == pytest.approx(150.0)
    assert pacer.played_ms() == pytest.approx(350.0)


@pytest.mark.parametrize("lead_ms", [0, 100, 200])
async def test_lead_is_a_parameter(lead_ms: float) -> None:
    t = AutoTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=lead_ms)
    pacer.feed(ramp(CHUNK * 8))
    pacer.finish()
    times = [when for when, _ in await drain(pacer, t)]
    ahead = max(lead_ms, 50.0)
    expected = [max(0.0, ((k + 1) * 50 - ahead) / 1000) for k in range(8)]
    assert times == pytest.approx(expected)


async def test_g711_rate_chunks() -> None:
    t = AutoTime()
    clock = PlayoutClock(time_source=t.time)
    pacer = OutputPacer(8_000, chunk_ms=20, lead_ms=100, clock=clock, sleep=t.sleep)
    pacer.feed(ramp(8_000))
    pacer.finish()
    chunks = [c for _, c in await drain(pacer, t)]
    assert {c.size for c in chunks} == {160}
    assert len(chunks) == 50
    assert t.now == pytest.approx(0.9)  # 1 s of audio, the last 100 ms sent ahead


async def test_partial_chunk_waits_for_more_audio_until_client_would_run_dry() -> None:
    t = AutoTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    pacer.feed(ramp(CHUNK + 600))  # 75 ms, more may follow
    first = await pacer.next_chunk()
    assert first is not None and first.size == CHUNK and t.now == 0.0
    partial = await pacer.next_chunk()  # nothing more arrives: sent when the 50 ms have played
    assert partial is not None and partial.size == 600
    assert t.now == pytest.approx(0.05)
    assert pacer.clock.buffered_ms(t.now) == pytest.approx(25.0)


async def test_feed_wakes_a_consumer_waiting_for_audio() -> None:
    t = ManualTime()
    pacer = make_pacer(t)
    consumer = asyncio.create_task(pacer.next_chunk())
    await asyncio.sleep(0)  # let the consumer reach its wait (it must not return without audio)
    assert not consumer.done()
    pacer.feed(ramp(CHUNK))
    chunk = await asyncio.wait_for(consumer, timeout=5)
    assert chunk is not None and np.array_equal(chunk, ramp(CHUNK))


async def test_finish_without_audio_ends_iteration() -> None:
    t = ManualTime()
    pacer = make_pacer(t)
    consumer = asyncio.create_task(drain_manual(pacer))
    pacer.finish()
    assert await asyncio.wait_for(consumer, timeout=5) == []


async def drain_manual(pacer: OutputPacer) -> list[np.ndarray]:
    return [chunk async for chunk in pacer]


async def test_stop_ends_a_paced_wait_at_once_and_freezes_played_ms() -> None:
    t = ManualTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    pacer.feed(ramp(CHUNK * 20))
    consumer = asyncio.create_task(drain_manual(pacer))
    deadline, _future = await t.next_sleeper()  # 3 chunks out, waiting to release the 4th
    assert deadline == pytest.approx(0.05)
    assert pacer.sent_ms == pytest.approx(150.0)
    t.now = 0.04  # 40 ms later the user barges in
    heard = pacer.stop()
    chunks = await asyncio.wait_for(consumer, timeout=5)
    assert heard == pytest.approx(40.0)
    assert len(chunks) == 3
    assert pacer.sent_ms == pytest.approx(40.0)  # the unplayed 110 ms were flushed by the client
    t.now = 10.0
    assert pacer.played_ms() == pytest.approx(40.0)
    assert pacer.pending_ms == 0
    pacer.feed(ramp(CHUNK))  # late TTS output after the stop is dropped
    assert await pacer.next_chunk() is None


async def test_cancelling_the_consumer_loses_no_audio() -> None:
    t = ManualTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    audio = ramp(CHUNK * 5)
    pacer.feed(audio)
    pacer.finish()
    consumer = asyncio.create_task(drain_manual(pacer))
    await t.next_sleeper()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert pacer.sent_ms == pytest.approx(150.0)
    assert pacer.pending_ms == pytest.approx(100.0)
    resumed = asyncio.create_task(drain_manual(pacer))
    deadline, future = await t.next_sleeper()
    t.wake(deadline, future)
    deadline, future = await t.next_sleeper()
    t.wake(deadline, future)
    rest = await asyncio.wait_for(resumed, timeout=5)
    assert np.array_equal(np.concatenate(rest), audio[3 * CHUNK :])


async def test_wait_played_returns_when_the_listener_has_heard_everything() -> None:
    t = AutoTime()
    pacer = make_pacer(t, chunk_ms=50, lead_ms=150)
    pacer.feed(ramp(CHUNK * 4))
    pacer.finish()
    await drain(pacer, t)
    assert t.now == pytest.approx(0.05)
    await pacer.wait_played()
    assert t.now == pytest.approx(0.2)
    assert pacer.played_ms() == pytest.approx(200.0)


def test_feed_rejects_wrong_sample_type() -> None:
    pacer = OutputPacer(RATE)
    with pytest.raises(TypeError):
        pacer.feed(np.zeros(10, dtype=np.float32))  # type: ignore[arg-type]
    pacer.finish()
    with pytest.raises(RuntimeError):
        pacer.feed(ramp(10))


# -- PlayoutClock ------------------------------------------------------------------------------


def test_played_is_min_of_sent_and_elapsed_for_gap_free_sending() -> None:
    clock = PlayoutClock(time_source=lambda: 0.0)
    for k in range(4):
        clock.record_sent(50, now=0.0 + k * 0.01)
    assert clock.sent_ms == 200
    assert clock.played_ms(now=0.0) == 0
    assert clock.played_ms(now=0.120) == pytest.approx(120)
    assert clock.played_ms(now=5.0) == pytest.approx(200)


def test_playhead_waits_at_the_end_of_the_buffer_when_sending_lags() -> None:
    clock = PlayoutClock(time_source=lambda: 0.0)
    clock.record_sent(100, now=0.0)
    # nothing sent for 400 ms: the listener heard 100 ms, then silence
    clock.record_sent(100, now=0.5)
    assert clock.played_ms(now=0.5) == pytest.approx(100)
    assert clock.played_ms(now=0.55) == pytest.approx(150)
    assert clock.playback_end() == pytest.approx(0.6)


def test_acknowledged_mode_reports_only_acknowledged_audio() -> None:
    clock = PlayoutClock(time_source=lambda: 0.0, acknowledged=True)
    clock.record_sent(300, now=0.0)
    assert clock.played_ms(now=10.0) == 0
    assert clock.estimated_played_ms(now=10.0) == pytest.approx(300)
    clock.acknowledge(100)
    clock.acknowledge(50)  # out-of-order mark: position never moves back
    assert clock.played_ms() == 100
    clock.acknowledge(1_000)  # cannot acknowledge more than was sent
    assert clock.played_ms() == 300


def test_interrupt_freezes_and_reset_starts_over() -> None:
    clock = PlayoutClock(time_source=lambda: 0.0, acknowledged=True)
    clock.record_sent(500, now=0.0)
    clock.acknowledge(120)
    assert clock.interrupt(now=0.3) == 120
    clock.acknowledge(400)  # marks echoed for the cleared buffer do not count
    clock.record_sent(50, now=0.4)
    assert clock.played_ms() == 120 and clock.sent_ms == 120 and clock.interrupted
    clock.reset()
    assert clock.sent_ms == 0 and clock.played_ms() == 0 and not clock.interrupted


def test_record_sent_rejects_negative_durations() -> None:
    with pytest.raises(ValueError):
        PlayoutClock().record_sent(-1)
