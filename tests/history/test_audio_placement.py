"""Where the recording puts each side's audio (history.audio_recording), on a fake clock with a writer
that keeps what it is given; and a real write to a full device (/dev/full)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxgate.history.audio_recording import OggOpusWriter, TwoTrackRecording

RATE = 16_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class KeepingWriter:
    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.closed = False

    def write(self, stereo: np.ndarray) -> None:
        self.blocks.append(stereo.copy())

    def close(self) -> None:
        self.closed = True

    def abandon(self) -> None:
        self.closed = True

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), np.int16)


def _ones(milliseconds: int, value: int = 1000) -> np.ndarray:
    return np.full(RATE * milliseconds // 1000, value, np.int16)


def _spans(channel: np.ndarray) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of the non-zero stretches, rounded to 10 ms (the fake clock adds floats)."""
    loud = np.flatnonzero(channel)
    if loud.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > 1)
    starts = np.concatenate([[loud[0]], loud[breaks + 1]])
    ends = np.concatenate([loud[breaks], [loud[-1]]]) + 1
    return [(_ms(s), _ms(e)) for s, e in zip(starts, ends, strict=True)]


def _ms(samples: int) -> int:
    return round(samples * 100 / RATE) * 10


def _recording() -> tuple[TwoTrackRecording, KeepingWriter, Clock]:
    writer, clock = KeepingWriter(), Clock()
    return TwoTrackRecording(writer, rate=RATE, clock=clock), writer, clock  # type: ignore[arg-type]


def test_caller_frames_follow_each_other_and_a_pause_becomes_silence() -> None:
    recording, writer, clock = _recording()
    for _ in range(10):  # 200 ms in real time, 20 ms frames
        clock.now += 0.02
        recording.caller(_ones(20), RATE)
    clock.now += 1.0  # the client sent nothing for a second
    for _ in range(5):
        clock.now += 0.02
        recording.caller(_ones(20), RATE)
    recording.finish()
    assert _spans(writer.audio[:, 0]) == [(0, 200), (1200, 1300)]
    assert writer.closed and not writer.audio[:, 1].any()


def test_a_burst_of_caller_audio_is_contiguous() -> None:
    recording, writer, clock = _recording()
    clock.now += 0.5
    for _ in range(50):  # one second sent at once
        recording.caller(_ones(20), RATE)
    recording.finish()
    assert _spans(writer.audio[:, 0]) == [(480, 1480)]


def test_a_reply_starts_when_sent_and_a_barge_in_drops_what_was_not_played() -> None:
    recording, writer, clock = _recording()
    clock.now += 1.0
    recording.agent(_ones(300), RATE, "reply_1")  # sent ahead of playback
    clock.now += 0.2
    recording.agent(_ones(300), RATE, "reply_1")
    clock.now += 0.2  # 400 ms played, 200 ms of it still ahead
    assert recording.cut_agent() == pytest.approx(200, abs=1)
    clock.now += 0.5
    recording.agent(_ones(100, 2000), RATE, "reply_2")
    clock.now += 0.2
    recording.finish()
    assert _spans(writer.audio[:, 1]) == [(1000, 1400), (1900, 2000)]


def test_unplayed_agent_audio_at_the_end_is_dropped() -> None:
    recording, writer, clock = _recording()
    recording.agent(_ones(1000), RATE, "reply_1")
    clock.now += 0.25
    recording.finish()
    assert _spans(writer.audio[:, 1]) == [(0, 250)]


def test_other_rates_are_resampled() -> None:
    recording, writer, clock = _recording()
    clock.now += 0.1
    recording.caller(np.full(800, 1000, np.int16), 8_000)  # 100 ms of μ-law-rate audio
    clock.now += 0.2
    recording.finish()
    assert abs(int(np.count_nonzero(writer.audio[:, 0])) - RATE // 10) < RATE // 100


def test_a_full_disk_stops_the_recording_and_says_why(tmp_path: Path) -> None:
    clock = Clock()
    recording = TwoTrackRecording(OggOpusWriter(Path("/dev/full")), rate=RATE, clock=clock)
    for _ in range(300):  # six seconds: the encoder's output reaches the device
        clock.now += 0.02
        recording.caller(_ones(20), RATE)
    assert recording.failed is not None and "No space left" in recording.failed
    recording.finish()  # no exception
