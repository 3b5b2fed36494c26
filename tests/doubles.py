"""Deterministic speech-provider doubles for tests, injected through settings, e.g.
``VOXGATE_VAD=tests.doubles:energy_vad``, ``VOXGATE_STT=tests.doubles:tone_stt``,
``VOXGATE_TURN_DETECTOR=tests.doubles:fixed_turn_detector``, ``VOXGATE_LLM=tests.doubles:scripted_llm``,
``VOXGATE_TTS=tests.doubles:tone_tts``. Never defaults.

- VAD: speech probability from frame energy.
- STT: "decodes" a marker tone: each phrase of :data:`PHRASES` is spoken as a sine at its own frequency,
  so a test chooses what the user says by choosing a tone. Partial decodes return the first words,
  growing with the audio length. Keyterms, when given, are appended as `` [keyterms: a, b]`` so a test can
  see they reached the STT.
- Turn detector: a fixed completion probability (``VOXGATE_TEST_TURN_PROBABILITY``, default 0.9), after
  ``VOXGATE_TEST_TURN_DELAY`` seconds (default 0).
- LLM: answers from a script keyed on the last message; can call tools and reveals what it was shown.
- TTS: a tone of ``MS_PER_WORD`` milliseconds per word at 16 kHz, so trimming is predictable.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence

import numpy as np

from voxgate.config import Settings
from voxgate.protocol.voices import VOICE_IDS
from voxgate.speech.base import (
    ChatMessage,
    FloatAudio,
    LLMEvent,
    PcmAudio,
    TextDelta,
    ToolCallRequest,
    ToolSchema,
)

SAMPLE_RATE = 16_000
TONE_AMPLITUDE = 0.3

PHRASES: dict[int, str] = {
    400: "hello there",
    500: "what is the weather in tokyo",
    600: "uh-huh",
    700: "wait stop I have another question",
    800: "tell me a long story",
    900: "what did you say before",
    1000: "please hold the line",
    1100: "okay",
    1200: "check my order",
    1300: "Thanks, that's all I needed. Goodbye.",
    1400: "Call me back at 555.",
}
PHRASE_TONES: dict[str, int] = {text: freq for freq, text in PHRASES.items()}


def tone(
    frequency: float, milliseconds: float, rate: int = SAMPLE_RATE, amplitude: float = TONE_AMPLITUDE
) -> FloatAudio:
    n = int(rate * milliseconds / 1000)
    t = np.arange(n, dtype=np.float32) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(audio: FloatAudio, rate: int = SAMPLE_RATE) -> float | None:
    indices = np.flatnonzero(np.abs(audio) > 0.02)
    if indices.size < rate // 50:
        return None
    loud = audio[indices[0] : indices[-1] + 1]
    spectrum = np.abs(np.fft.rfft(loud * np.hanning(loud.size)))
    peak = int(np.argmax(spectrum))
    return peak * rate / loud.size


def phrase_for(audio: FloatAudio) -> str:
    freq = dominant_frequency(audio)
    if freq is None:
        return ""
    nearest = min(PHRASES, key=lambda f: abs(f - freq))
    return PHRASES[nearest] if abs(nearest - freq) <= 30 else ""


# --- VAD --------------------------------------------------------------------------------------------
class EnergyVoiceActivityStream:
    frame_samples = 512

    def speech_probability(self, frame: FloatAudio) -> float:
        rms = float(np.sqrt(np.mean(np.square(frame)))) if frame.size else 0.0
        return min(1.0, rms / 0.05)

    def reset(self) -> None:
        pass


class EnergyVAD:
    def create_stream(self) -> EnergyVoiceActivityStream:
        return EnergyVoiceActivityStream()


def energy_vad(settings: Settings) -> EnergyVAD:
    return EnergyVAD()


# --- STT --------------------------------------------------------------------------------------------
class ToneSTT:
    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        await asyncio.sleep(0)
        text = phrase_for(audio)
        if not text:
            return ""
        if partial:
            voiced_seconds = float(np.count_nonzero(np.abs(audio) > 0.02)) / SAMPLE_RATE
            words = text.split()
            return " ".join(words[: max(1, min(len(words), int(voiced_seconds * 4)))])
        if keyterms:
            text = f"{text} [keyterms: {', '.join(keyterms)}]"
        return text


def tone_stt(settings: Settings) -> ToneSTT:
    return ToneSTT()


class LoopBlockingSTT(ToneSTT):
    """A badly written provider: its first final transcription blocks the server's event loop for
    ``seconds`` (a synchronous sleep on the loop, as a blocking HTTP client or a long computation would)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.blocked = False

    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        if not partial and not self.blocked:
            self.blocked = True
            time.sleep(self.seconds)  # noqa: ASYNC251 - blocking the loop is this double's purpose
        return await super().transcribe(audio, keyterms=keyterms, partial=partial)


def loop_blocking_stt(settings: Settings) -> LoopBlockingSTT:
    return LoopBlockingSTT(float(os.environ.get("VOXGATE_TEST_BLOCK_LOOP_SECONDS", "3")))


class FixedTextSTT:
    """Hears ``text`` in any audio with some energy: for benchmarks that speak real (synthesised) speech
    to a server whose model output is not what is measured. Partials return the first words."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        await asyncio.sleep(0)
        if audio.size == 0 or float(np.max(np.abs(audio))) < 0.02:
            return ""
        return " ".join(self.text.split()[:2]) if partial else self.text


def fixed_text_stt(settings: Settings) -> FixedTextSTT:
    return FixedTextSTT(os.environ.get("VOXGATE_TEST_STT_TEXT", "hello there"))


# --- turn detector ----------------------------------------------------------------------------------
class FixedTurnDetector:
    """Answers ``probability`` after ``delay`` seconds (a slow model, when the delay is long)."""

    def __init__(self, probability: float, delay: float = 0.0) -> None:
        self.probability = probability
        self.delay = delay

    async def completion_probability(self, audio: FloatAudio) -> float:
        await asyncio.sleep(self.delay)
        return self.probability


def fixed_turn_detector(settings: Settings) -> FixedTurnDetector:
    return FixedTurnDetector(
        float(os.environ.get("VOXGATE_TEST_TURN_PROBABILITY", "0.9")),
        float(os.environ.get("VOXGATE_TEST_TURN_DELAY", "0")),
    )


def no_turn_detector(settings: Settings) -> None:
    return None


# --- LLM --------------------------------------------------------------------------------------------
LONG_STORY = (
    "Once upon a time there was a small robot. It lived in a quiet village by the sea. "
    "Every morning it walked along the shore and counted the waves. One day it found a bottle with a map. "
    "The map showed an island far away. The robot built a boat from driftwood and set sail at dawn."
)


class ScriptedLLM:
    """Answers from a script; reveals the conversation it was shown when asked."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        for event in self._answer(messages, {t.name for t in tools}):
            await asyncio.sleep(0)
            yield event

    def _answer(self, messages: Sequence[ChatMessage], tools: set[str]) -> list[LLMEvent]:
        system = " ".join(m.content for m in messages if m.role == "system")
        last = messages[-1] if messages else ChatMessage(role="user", content="")
        if "SAY:" in system:
            return _say(system.rsplit("SAY:", 1)[1].strip())
        if last.role == "tool":
            try:
                payload = json.loads(last.content)
            except ValueError:
                payload = last.content
            if isinstance(payload, dict) and "error" in payload:
                return _say(f"Sorry, I could not get that answer. {payload['error']}")
            return _say(f"The tool said {last.content}.")
        text = last.content.lower() if last.role == "user" else ""
        if "weather" in text and "get_weather" in tools:
            return [
                TextDelta("Let me check that for you. "),
                ToolCallRequest("call_w1", "get_weather", {"location": "Tokyo"}),
            ]
        if "order" in text and "check_order" in tools:
            return [
                TextDelta("One moment. "),
                ToolCallRequest("", "check_order", {"order_id": "AB12345", "rush": True}),
            ]
        if "card" in text and "aai_credit_card_luhn_check" in tools:
            digits = "".join(char for char in last.content if char.isdigit())
            return [
                TextDelta("Let me check that card. "),
                ToolCallRequest("", "aai_credit_card_luhn_check", {"card_number": digits}),
            ]
        if "hold the line" in text and "transfer" in tools:
            return [
                TextDelta("Transferring you now. "),
                ToolCallRequest("", "transfer", {"department": "sales"}),
            ]
        if "story" in text:
            return _say(LONG_STORY)
        if "say before" in text:
            previous = [m.content for m in messages if m.role == "assistant"]
            return _say(f"Before I said: {' | '.join(previous) if previous else 'nothing'}.")
        if text:
            return _say(f"You said {last.content}.")
        return _say("How can I help?")


def _say(text: str) -> list[LLMEvent]:
    words = text.split(" ")
    return [TextDelta(word + (" " if i < len(words) - 1 else "")) for i, word in enumerate(words)]


def scripted_llm(settings: Settings) -> ScriptedLLM:
    return ScriptedLLM(float(os.environ.get("VOXGATE_TEST_LLM_DELAY", "0")))


# --- TTS --------------------------------------------------------------------------------------------
MS_PER_WORD = 100
TTS_TONE_HZ = 300.0


class ToneTTS:
    sample_rate = SAMPLE_RATE

    def has_voice(self, voice_id: str) -> bool:
        return voice_id in VOICE_IDS

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        words = len(text.split())
        samples = words * MS_PER_WORD * SAMPLE_RATE // 1000
        audio = (tone(TTS_TONE_HZ, samples * 1000 / SAMPLE_RATE) * 32767 * 0.5).astype(np.int16)
        step = SAMPLE_RATE // 10
        for start in range(0, audio.size, step):
            await asyncio.sleep(0)
            yield audio[start : start + step]


def tone_tts(settings: Settings) -> ToneTTS:
    return ToneTTS()


DOUBLES_ENV: dict[str, str] = {
    "VOXGATE_VAD": "tests.doubles:energy_vad",
    "VOXGATE_STT": "tests.doubles:tone_stt",
    "VOXGATE_TURN_DETECTOR": "tests.doubles:fixed_turn_detector",
    "VOXGATE_LLM": "tests.doubles:scripted_llm",
    "VOXGATE_TTS": "tests.doubles:tone_tts",
}


def slow_energy_vad(settings: Settings) -> EnergyVAD:
    """Loads for ``VOXGATE_TEST_SLOW_LOAD_SECONDS`` (runs in the loader's worker thread)."""
    time.sleep(float(os.environ.get("VOXGATE_TEST_SLOW_LOAD_SECONDS", "5")))
    return EnergyVAD()


def broken_tts(settings: Settings) -> ToneTTS:
    raise RuntimeError("the test TTS is broken on purpose")
