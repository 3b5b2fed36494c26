"""Speech stack factory: built-in names, ``module:attribute`` injection, errors, and the async loader."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from voxgate.config import Settings
from voxgate.speech.base import (
    ChatMessage,
    FloatAudio,
    LLMEvent,
    PcmAudio,
    SpeechStack,
    TextDelta,
    ToolSchema,
)
from voxgate.speech.factory import SpeechStackLoader, build_speech_stack, provider_factory

HERE = __name__


# --- deterministic doubles, constructed by the factory from settings ----------------------------
class FixedVADStream:
    frame_samples = 512

    def speech_probability(self, frame: FloatAudio) -> float:
        return float(np.abs(frame).max() > 0.1)

    def reset(self) -> None:
        pass


class FixedVAD:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.closed = False

    def create_stream(self) -> FixedVADStream:
        return FixedVADStream()

    def close(self) -> None:
        self.closed = True


class FixedSTT:
    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        return "hello"


class FixedLLM:
    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        yield TextDelta("Hi.")


class SilentTTS:
    sample_rate = 16_000

    def has_voice(self, voice_id: str) -> bool:
        return True

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        yield np.zeros(160, np.int16)


class BuildLog:
    calls: list[str] = []  # noqa: RUF012  (shared on purpose: the factory calls module-level functions)
    started = threading.Event()
    release = threading.Event()
    fail_next = False


def make_vad(settings: Settings) -> FixedVAD:
    BuildLog.calls.append("vad")
    return FixedVAD(settings)


def make_stt(settings: Settings) -> FixedSTT:
    BuildLog.calls.append("stt")
    return FixedSTT()


def make_llm(settings: Settings) -> FixedLLM:
    BuildLog.calls.append("llm")
    return FixedLLM()


def make_tts(settings: Settings) -> SilentTTS:
    BuildLog.calls.append("tts")
    return SilentTTS()


def make_vad_slowly(settings: Settings) -> FixedVAD:
    BuildLog.started.set()
    BuildLog.release.wait(timeout=10)
    if BuildLog.fail_next:
        BuildLog.fail_next = False
        raise RuntimeError("model file vanished")
    return make_vad(settings)


NOT_CALLABLE = 42


@pytest.fixture(autouse=True)
def _reset_log() -> None:
    BuildLog.calls = []
    BuildLog.started = threading.Event()
    BuildLog.release = threading.Event()
    BuildLog.fail_next = False


def injected_settings(tmp_path: Path, **overrides: str) -> Settings:
    values = {
        "vad": f"{HERE}:make_vad",
        "stt": f"{HERE}:make_stt",
        "turn_detector": "none",
        "llm": f"{HERE}:make_llm",
        "tts": f"{HERE}:make_tts",
        **overrides,
    }
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_module_attribute_factories_are_injected(tmp_path: Path) -> None:
    settings = injected_settings(tmp_path)
    stack = build_speech_stack(settings)
    assert isinstance(stack, SpeechStack)
    assert isinstance(stack.vad, FixedVAD) and stack.vad.settings is settings
    assert isinstance(stack.stt, FixedSTT)
    assert stack.turn_detector is None
    assert isinstance(stack.llm, FixedLLM)
    assert isinstance(stack.tts, SilentTTS)
    assert BuildLog.calls == ["vad", "stt", "llm", "tts"]


def test_unknown_name_lists_the_choices_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"VOXGATE_TTS='festival'.*'piper', 'espeak', 'openai'.*module:attribute"
    ):
        build_speech_stack(injected_settings(tmp_path, tts="festival"))
    assert BuildLog.calls == []


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("tests.speech.no_such_module:make", "cannot import module"),
        (f"{HERE}:no_such_factory", "has no attribute"),
        (f"{HERE}:NOT_CALLABLE", "is not callable"),
        (":make_vad", "expected 'module:attribute'"),
    ],
)
def test_bad_factory_references_are_clear_errors(reference: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        provider_factory("llm", reference)


def test_remote_providers_are_built_without_touching_the_network(tmp_path: Path) -> None:
    from voxgate.speech.llm_openai import OpenAILLM
    from voxgate.speech.stt_openai import OpenAISTT
    from voxgate.speech.tts_openai import OpenAITTS

    settings = injected_settings(
        tmp_path, stt="openai", llm="openai", tts="openai", openai_base_url="http://127.0.0.1:9/v1"
    )
    stack = build_speech_stack(settings)
    assert isinstance(stack.stt, OpenAISTT) and stack.stt.base_url == "http://127.0.0.1:9/v1"
    assert isinstance(stack.llm, OpenAILLM)
    assert isinstance(stack.tts, OpenAITTS) and stack.tts.sample_rate == 24_000


async def test_loader_builds_once_for_concurrent_callers(tmp_path: Path) -> None:
    loader = SpeechStackLoader(injected_settings(tmp_path, vad=f"{HERE}:make_vad_slowly"))
    first = asyncio.create_task(loader.get())
    second = asyncio.create_task(loader.get())
    await asyncio.to_thread(BuildLog.started.wait, 10)
    BuildLog.release.set()
    stack_a, stack_b = await asyncio.gather(first, second)
    assert stack_a is stack_b
    assert await loader.get() is stack_a
    assert BuildLog.calls.count("vad") == 1


async def test_loader_failure_reaches_every_waiting_caller_and_is_retried(tmp_path: Path) -> None:
    loader = SpeechStackLoader(injected_settings(tmp_path, vad=f"{HERE}:make_vad_slowly"))
    BuildLog.fail_next = True
    first = asyncio.create_task(loader.get())
    second = asyncio.create_task(loader.get())
    await asyncio.to_thread(BuildLog.started.wait, 10)
    BuildLog.release.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) and "vanished" in str(result) for result in results)
    assert not loader.loaded
    stack = await loader.get()  # the next get() builds again, and this time succeeds
    assert isinstance(stack.vad, FixedVAD) and loader.loaded


async def test_loader_close_releases_providers_and_rebuilds_later(tmp_path: Path) -> None:
    loader = SpeechStackLoader(injected_settings(tmp_path))
    stack = await loader.get()
    assert isinstance(stack.vad, FixedVAD)
    loader.close()
    assert stack.vad.closed and not loader.loaded
    assert await loader.get() is not stack


@pytest.mark.models
def test_default_settings_build_the_embedded_stack() -> None:
    from voxgate.speech.llm_llama import LlamaLLM
    from voxgate.speech.stt_whisper import WhisperSTT
    from voxgate.speech.tts_piper import PiperTTS
    from voxgate.speech.turn_smart import SmartTurnDetector
    from voxgate.speech.vad_silero import SileroVAD

    builtin = {
        "vad": "silero",
        "stt": "whisper",
        "turn_detector": "smart-turn",
        "llm": "embedded",
        "tts": "piper",
    }
    stack = build_speech_stack(Settings(**builtin))  # the assembled gguf is cached in the default data dir
    assert isinstance(stack.vad, SileroVAD)
    assert isinstance(stack.stt, WhisperSTT)
    assert isinstance(stack.turn_detector, SmartTurnDetector)
    assert isinstance(stack.llm, LlamaLLM)
    assert isinstance(stack.tts, PiperTTS)
