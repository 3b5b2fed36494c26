"""Per-frame CPU cost of voxgate's audio path, per wire encoding; prints markdown tables.

Input path (per 20 ms ``input.audio`` frame): base64 decode + codec decode -> stream resample to
16 kHz -> float32 (what VAD/STT take).
Output path (per 20 ms of TTS audio at the Piper rate, 22050 Hz): stream resample to the wire
rate -> volume 80 -> codec encode -> base64.

Usage: ``.venv/bin/python bench/audio_path.py [--seconds 60] [--repeats 3]``
Times are wall-clock per frame on the calling thread (perf_counter_ns), reported as percentiles
over all frames of all repeats; the machine should otherwise be idle.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable

import numpy as np

from voxgate.audio import (
    ENCODINGS,
    StreamResampler,
    apply_volume,
    decode_audio,
    decode_base64_audio,
    encode_audio,
    sample_rate_for,
    to_float32,
    to_int16,
)

FRAME_MS = 20
VAD_RATE = 16_000
TTS_RATE = 22_050


def speechlike(rate: int, seconds: float, seed: int = 1) -> np.ndarray:
    """A 200 Hz harmonic series with a 4 Hz syllable envelope plus noise, as int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    voiced = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return to_int16(0.15 * envelope * voiced + rng.normal(0, 0.01, t.size))


def frames(signal: np.ndarray, rate: int) -> list[np.ndarray]:
    size = rate * FRAME_MS // 1000
    return [signal[i : i + size] for i in range(0, signal.size - size + 1, size)]


def time_frames(items: list, step: Callable[[object], object]) -> list[float]:
    costs = []
    for item in items:
        start = time.perf_counter_ns()
        step(item)
        costs.append((time.perf_counter_ns() - start) / 1000)
    return costs


def input_path(encoding: str, seconds: float) -> list[float]:
    rate = sample_rate_for(encoding)
    pcm_frames = frames(speechlike(rate, seconds), rate)
    wire = [base64.b64encode(encode_audio(encoding, f)).decode() for f in pcm_frames]
    resampler = StreamResampler(rate, VAD_RATE)

    def step(b64: object) -> object:
        pcm = decode_base64_audio(encoding, str(b64))
        return to_float32(resampler.process(pcm))

    return time_frames(wire, step)


def output_path(encoding: str, seconds: float) -> list[float]:
    tts = frames(speechlike(TTS_RATE, seconds), TTS_RATE)
    resampler = StreamResampler(TTS_RATE, sample_rate_for(encoding))

    def step(pcm: object) -> object:
        out = apply_volume(resampler.process(pcm), 80)  # type: ignore[arg-type]
        return base64.b64encode(encode_audio(encoding, out))

    return time_frames(tts, step)


def codec_only(encoding: str, seconds: float) -> tuple[list[float], list[float]]:
    rate = sample_rate_for(encoding)
    pcm_frames = frames(speechlike(rate, seconds), rate)
    wire = [encode_audio(encoding, f) for f in pcm_frames]
    decode_costs = time_frames(wire, lambda payload: decode_audio(encoding, payload))  # type: ignore[arg-type]
    encode_costs = time_frames(pcm_frames, lambda f: encode_audio(encoding, f))  # type: ignore[arg-type]
    return decode_costs, encode_costs


def row(label: str, costs: list[float]) -> str:
    p50, p95, p99 = np.percentile(costs, [50, 95, 99])
    mean = float(np.mean(costs))
    share = mean / (FRAME_MS * 1000) * 100
    return f"| {label} | {len(costs)} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {mean:.1f} | {share:.3f} % |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per run (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per path (default 3)")
    args = parser.parse_args()

    header = (
        "| path | frames | p50 µs | p95 µs | p99 µs | mean µs | share of one core |\n"
        "|---|---|---|---|---|---|---|"
    )
    print(f"## Audio path cost per {FRAME_MS} ms frame\n")
    print(header)
    for encoding in ENCODINGS:
        rate = sample_rate_for(encoding)
        costs = [c for _ in range(args.repeats) for c in input_path(encoding, args.seconds)]
        print(row(f"in {encoding}: b64 decode + decode + {rate}->{VAD_RATE} + float32", costs))
    for encoding in ENCODINGS:
        rate = sample_rate_for(encoding)
        costs = [c for _ in range(args.repeats) for c in output_path(encoding, args.seconds)]
        print(row(f"out {encoding}: {TTS_RATE}->{rate} + volume + encode + b64", costs))
    print(f"\n## Codec alone per {FRAME_MS} ms frame\n")
    print(header)
    for encoding in ENCODINGS:
        decode_costs: list[float] = []
        encode_costs: list[float] = []
        for _ in range(args.repeats):
            d, e = codec_only(encoding, args.seconds)
            decode_costs += d
            encode_costs += e
        print(row(f"decode {encoding}", decode_costs))
        print(row(f"encode {encoding}", encode_costs))


if __name__ == "__main__":
    main()
