"""Fake-microphone WAV files for Chromium's ``--use-file-for-fake-audio-capture``.

Chromium wants a 16-bit PCM WAV; with the ``%noloop`` suffix it plays the file once per capture (from
the moment the page opens the microphone) and then delivers silence. The "speech" is made of marker
tones the tone STT double of tests/doubles.py decodes into known phrases, so the page's transcript is
deterministic AND proves the page resampled the microphone correctly: a wrong rate shifts the tone and
the double hears nothing (or another phrase). ``write_speech`` places real speech instead, for the
test with the real embedded speech stack.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.doubles import PHRASE_TONES
from voxgate.audio.resample import resample

WAV_RATE = 48_000
AMPLITUDE = 0.3


@dataclass(frozen=True)
class Utterance:
    """``phrase`` (a key of PHRASE_TONES) spoken from ``start_s`` for ``duration_s`` seconds."""

    phrase: str
    start_s: float
    duration_s: float = 0.9


def write_script(path: Path, utterances: list[Utterance], total_s: float) -> Path:
    """Silence of ``total_s`` seconds with each utterance's tone placed at its start time."""
    audio = np.zeros(int(WAV_RATE * total_s), dtype=np.float32)
    for utterance in utterances:
        start = int(utterance.start_s * WAV_RATE)
        n = int(utterance.duration_s * WAV_RATE)
        t = np.arange(n, dtype=np.float32) / WAV_RATE
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
        audio[start : start + n] += AMPLITUDE * ramp * np.sin(2 * np.pi * PHRASE_TONES[utterance.phrase] * t)
    return _write_wav(path, audio)


def write_speech(
    path: Path, speech: NDArray[np.float32], rate: int, *, start_s: float, total_s: float
) -> Path:
    """Real speech (mono float in [-1, 1] at ``rate`` Hz, e.g. from a TTS) starting at ``start_s`` in
    ``total_s`` seconds of silence; for tests with the real speech stack instead of the tone double."""
    voice = resample(np.asarray(speech, dtype=np.float32), rate, WAV_RATE)
    audio = np.zeros(max(int(WAV_RATE * total_s), int(WAV_RATE * start_s) + len(voice)), dtype=np.float32)
    start = int(start_s * WAV_RATE)
    audio[start : start + len(voice)] = voice
    return _write_wav(path, audio)


def _write_wav(path: Path, audio: NDArray[np.float32]) -> Path:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(pcm.tobytes())
    return path
