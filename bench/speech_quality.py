"""Speech quality benchmark: STT word error rate and TTS intelligibility / time to first audio.

    .venv/bin/python -m bench.speech_quality [--models tiny.en,base] [--skip-human]
    .venv/bin/python -m bench.speech_quality --stt-windows 30,8,4,0 --stt-only   # encoder window sizes

STT: the fixed voice-agent sentences (bench/sentences.py) synthesised with espeak-ng en-us and the
Piper joe voice, plus the human recordings of Debian's ``pocketsphinx-testdata`` (5 LibriVox sentences,
5 "cards" commands, "go forward ten meters"; ``apt-get install pocketsphinx-testdata``), decoded one
utterance per call exactly as the server does (int8, beam 1, no timestamps). Key terms: rare-name
sentences decoded without and with hotwords. TTS: Piper output transcribed back, time to first audio
through the async provider, real-time factor; espeak-ng time to first audio.

WER normalisation is MODELS.md's (tests/speech/fixtures.py: ``normalize_words``). Prints a markdown
report to stdout. The CPU is shared; note the load when quoting figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from bench.sentences import AGENT_SENTENCES, KEYTERM_SENTENCES
from tests.speech.fixtures import (
    espeak_speech,
    isolated_settings,
    normalize_words,
    piper_speech,
    to_16k,
    wav_to_float,
    word_errors,
)

from voxgate.speech.stt_whisper import WhisperSTT
from voxgate.speech.tts_espeak import EspeakTTS
from voxgate.speech.tts_piper import PiperTTS

HUMAN_DATA = Path("/usr/share/pocketsphinx/test/data")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def human_set() -> list[tuple[str, np.ndarray]]:
    """(reference, 16 kHz audio) for the 11 transcribed recordings of pocketsphinx-testdata."""
    if not HUMAN_DATA.is_dir():
        return []
    items: list[tuple[str, np.ndarray]] = []
    line = re.compile(r"<s>(.*)</s>\s*\((.+)\)")
    for folder, transcript in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for text in (HUMAN_DATA / folder / transcript).read_text().splitlines():
            match = line.search(text)
            if match:
                audio, rate = wav_to_float((HUMAN_DATA / folder / f"{match.group(2)}.wav").read_bytes())
                items.append((match.group(1).strip(), to_16k(audio, rate)))
    raw = np.frombuffer((HUMAN_DATA / "goforward.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
    items.append(("go forward ten meters", raw))
    return items


def stt_rows(
    model: str, sets: dict[str, list[tuple[str, np.ndarray]]], window_seconds: float | None = None
) -> tuple[list[str], dict[str, float]]:
    update: dict[str, object] = {"stt_model": model}
    if window_seconds is not None:
        update["stt_window_seconds"] = window_seconds
    settings = isolated_settings().model_copy(update=update)
    started = time.perf_counter()
    stt = WhisperSTT(settings)
    load = time.perf_counter() - started
    stt.decode(sets["piper joe"][0][1])  # warm-up
    cells: list[str] = []
    errors_shown: dict[str, float] = {}
    latencies: list[float] = []
    audio_seconds = decode_seconds = 0.0
    for name, items in sets.items():
        errors = words = 0
        for reference, audio in items:
            begun = time.perf_counter()
            hypothesis = stt.decode(audio)
            elapsed = time.perf_counter() - begun
            latencies.append(elapsed)
            audio_seconds += len(audio) / 16_000
            decode_seconds += elapsed
            e, n = word_errors(reference, hypothesis)
            errors, words = errors + e, words + n
        wer = 100.0 * errors / max(words, 1)
        errors_shown[name] = wer
        cells.append(f"{wer:.1f} ({errors}/{words})")
    keyterm_cells = keyterm_recall(stt)
    stt.close()
    label = model if window_seconds is None else f"{model}, window {window_seconds:g} s"
    if stt.window_frames < 3000:
        label += f" ({stt.full_window_fallbacks} full-window retries)"
    row = [
        label,
        *cells,
        *keyterm_cells,
        f"{percentile(latencies, 50) * 1000:.0f} / {percentile(latencies, 95) * 1000:.0f}",
        f"{decode_seconds / audio_seconds:.3f}",
        f"{load:.2f}",
    ]
    return row, errors_shown


def keyterm_recall(stt: WhisperSTT) -> list[str]:
    """How many of the configured key terms appear verbatim, without and with hotwords."""
    found_plain = found_hinted = total = 0
    for text, terms in KEYTERM_SENTENCES:
        audio = piper_speech(text)
        plain, hinted = stt.decode(audio), stt.decode(audio, terms)
        for term in terms:
            total += 1
            found_plain += term.lower() in plain.lower()
            found_hinted += term.lower() in hinted.lower()
    return [f"{found_plain}/{total}", f"{found_hinted}/{total}"]


async def first_audio(chunks) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    first = None
    parts = []
    async for chunk in chunks:
        if first is None:
            first = time.perf_counter() - started
        parts.append(chunk)
    return (first or float("nan")), (np.concatenate(parts) if parts else np.zeros(0, np.int16))


async def tts_figures(stt_models: Sequence[str]) -> list[str]:
    settings = isolated_settings()
    piper = PiperTTS(settings)
    espeak = EspeakTTS(settings)
    await first_audio(piper.synthesize("Warm up.", voice_id="ivy"))
    piper_ttfa, espeak_ttfa, synth_seconds, audio_seconds = [], [], 0.0, 0.0
    rendered: list[tuple[str, np.ndarray]] = []
    for text in AGENT_SENTENCES:
        begun = time.perf_counter()
        ttfa, audio = await first_audio(piper.synthesize(text, voice_id="ivy"))
        synth_seconds += time.perf_counter() - begun
        audio_seconds += len(audio) / piper.sample_rate
        piper_ttfa.append(ttfa)
        rendered.append((text, to_16k(audio.astype(np.float32) / 32768, piper.sample_rate)))
        espeak_ttfa.append((await first_audio(espeak.synthesize(text, voice_id="ivy")))[0])
    piper.close()
    lines = [
        "| engine | TTFA p50 / p95 / max (ms) | RTF | round-trip WER % (" + " / ".join(stt_models) + ") |",
        "|---|---|---|---|",
    ]
    wers = []
    for model in stt_models:
        stt = WhisperSTT(settings.model_copy(update={"stt_model": model}))
        errors = words = 0
        for text, audio in rendered:
            e, n = word_errors(text, stt.decode(audio))
            errors, words = errors + e, words + n
        stt.close()
        wers.append(f"{100.0 * errors / max(words, 1):.1f} ({errors}/{words})")
    lines.append(
        f"| Piper joe (22.05 kHz) | {percentile(piper_ttfa, 50) * 1000:.0f} / "
        f"{percentile(piper_ttfa, 95) * 1000:.0f} / {max(piper_ttfa) * 1000:.0f} | "
        f"{synth_seconds / audio_seconds:.3f} | {' / '.join(wers)} |"
    )
    lines.append(
        f"| espeak-ng en-us+f3 (subprocess) | {percentile(espeak_ttfa, 50) * 1000:.0f} / "
        f"{percentile(espeak_ttfa, 95) * 1000:.0f} / {max(espeak_ttfa) * 1000:.0f} | – | – |"
    )
    return lines


def vad_and_turn_figures() -> list[str]:
    """CPU per 32 ms Silero frame (one thread) and smart-turn inference time (8 s window, one thread)."""
    from voxgate.speech.turn_smart import SmartTurnDetector
    from voxgate.speech.vad_silero import FRAME_SAMPLES, SileroVAD

    settings = isolated_settings()
    audio = np.concatenate([piper_speech(text) for text in AGENT_SENTENCES[:8]])
    frames = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    stream = SileroVAD(settings).create_stream()
    frame_costs = []
    for frame in frames:
        begun = time.perf_counter()
        stream.speech_probability(frame)
        frame_costs.append(time.perf_counter() - begun)
    turn = SmartTurnDetector(settings)
    turn_costs = []
    for text in AGENT_SENTENCES[:12]:
        clip = piper_speech(text)
        begun = time.perf_counter()
        turn.predict(clip)
        turn_costs.append(time.perf_counter() - begun)
    turn.close()
    vad_p50, vad_p95 = percentile(frame_costs, 50), percentile(frame_costs, 95)
    turn_p50, turn_p95 = percentile(turn_costs, 50), percentile(turn_costs, 95)
    return [
        "| model | p50 | p95 | share of one core |",
        "|---|---|---|---|",
        f"| Silero VAD v6, per 32 ms frame ({len(frame_costs)} frames) | {vad_p50 * 1e6:.0f} µs"
        f" | {vad_p95 * 1e6:.0f} µs | {vad_p50 / 0.032 * 100:.2f} % |",
        f"| smart-turn v3.2, per call incl. features ({len(turn_costs)} calls) | "
        f"{turn_p50 * 1000:.0f} ms | {turn_p95 * 1000:.0f} ms | – |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="tiny.en", help="comma-separated: tiny.en,base")
    parser.add_argument("--skip-human", action="store_true")
    parser.add_argument(
        "--stt-windows", default="", help="comma-separated encoder windows in seconds (stt_window_seconds)"
    )
    parser.add_argument("--stt-only", action="store_true", help="skip the VAD, end-of-turn and TTS sections")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    windows: list[float | None] = [float(w) for w in args.stt_windows.split(",") if w.strip()] or [None]

    sets: dict[str, list[tuple[str, np.ndarray]]] = {
        "espeak en-us": [(text, espeak_speech(text, "en-us")) for text in AGENT_SENTENCES],
        "piper joe": [(text, piper_speech(text)) for text in AGENT_SENTENCES],
    }
    if not args.skip_human:
        human = human_set()
        if human:
            sets["human (pocketsphinx-testdata)"] = human
        else:
            print("<!-- pocketsphinx-testdata not installed: no human set -->", file=sys.stderr)
    words = {name: sum(len(normalize_words(ref)) for ref, _ in items) for name, items in sets.items()}

    load = os.getloadavg()[0]
    print("# voxgate speech quality\n")
    print(f"CPU: {os.cpu_count()} cores, 1-min load average at start {load:.2f} (shared machine).")
    print(f"Sentences: {len(AGENT_SENTENCES)} voice-agent sentences; words per set: {words}.\n")
    print("## STT (faster-whisper, int8, beam 1, one utterance per call)\n")
    header = ["model", *[f"WER % {name}" for name in sets], "keyterms found (plain)", "keyterms (hotwords)",
              "latency p50 / p95 (ms)", "RTF", "load (s)"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for model in models:
        for window in windows:
            row, _ = stt_rows(model, sets, window)
            print("| " + " | ".join(row) + " |", flush=True)
    if args.stt_only:
        return
    print("\n## VAD and end-of-turn cost\n")
    for line in vad_and_turn_figures():
        print(line)
    print("\n## TTS (one sentence per call through the async provider)\n")
    for line in asyncio.run(tts_figures(models)):
        print(line)
    print(f"\n1-min load average at end {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
