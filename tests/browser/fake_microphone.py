"""Fake-microphone WAV files for Chromium's ``--use-file-for-fake-audio-capture``.

Chromium wants a 16-bit PCM WAV; with the ``%noloop`` suffix it plays the file once per capture (from
the moment the page opens the microphone) and then delivers silence. The "speech" is made of marker
tones the tone STT double of tests/doubles.py decodes into known phrases, so the page's transcript is
deterministic AND proves the page resampled the microphone correctly: a wrong rate shifts the tone and
the double hears nothing (or another phrase).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.doubles import PHRASE_TONES

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
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(pcm.tobytes())
    return path
