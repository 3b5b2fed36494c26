"""Builds the speech stack (VAD, STT, turn detector, LLM, TTS) that the settings ask for.

Each provider setting takes a built-in name or ``module:attribute`` naming a factory called as
``factory(settings)`` (how tests inject deterministic doubles). Implementations are imported lazily,
inside their branch, so choosing a remote provider never loads an embedded model's dependencies.

Public API: :func:`build_speech_stack` (synchronous, loads models) and :class:`SpeechStackLoader`
(async, builds once in a worker thread and caches).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

from voxgate.config import Settings
from voxgate.speech.base import (
    LanguageModel,
    SpeechStack,
    SpeechToText,
    TextToSpeech,
    TurnDetector,
    VoiceActivityDetector,
)

logger = logging.getLogger(__name__)


def _build_silero_vad(settings: Settings) -> VoiceActivityDetector:
    from voxgate.speech.vad_silero import SileroVAD

    return SileroVAD(settings)


def _build_whisper_stt(settings: Settings) -> SpeechToText:
    from voxgate.speech.stt_whisper import WhisperSTT

    return WhisperSTT(settings)


def _build_openai_stt(settings: Settings) -> SpeechToText:
    from voxgate.speech.stt_openai import OpenAISTT

    return OpenAISTT(settings)


def _build_smart_turn(settings: Settings) -> TurnDetector:
    from voxgate.speech.turn_smart import SmartTurnDetector

    return SmartTurnDetector(settings)


def _build_no_turn_detector(settings: Settings) -> None:
    return None


def _build_llama_llm(settings: Settings) -> LanguageModel:
    from voxgate.speech.llm_llama import LlamaLLM

    return LlamaLLM(settings)


def _build_openai_llm(settings: Settings) -> LanguageModel:
    from voxgate.speech.llm_openai import OpenAILLM

    return OpenAILLM(settings)


def _build_piper_tts(settings: Settings) -> TextToSpeech:
    from voxgate.speech.tts_piper import PiperTTS

    return PiperTTS(settings)


def _build_espeak_tts(settings: Settings) -> TextToSpeech:
    from voxgate.speech.tts_espeak import EspeakTTS

    return EspeakTTS(settings)


def _build_openai_tts(settings: Settings) -> TextToSpeech:
    from voxgate.speech.tts_openai import OpenAITTS

    return OpenAITTS(settings)


BUILTIN_PROVIDERS: dict[str, dict[str, Callable[[Settings], Any]]] = {
    "vad": {"silero": _build_silero_vad},
    "stt": {"whisper": _build_whisper_stt, "openai": _build_openai_stt},
    "turn_detector": {"smart-turn": _build_smart_turn, "none": _build_no_turn_detector},
    "llm": {"embedded": _build_llama_llm, "openai": _build_openai_llm},
    "tts": {"piper": _build_piper_tts, "espeak": _build_espeak_tts, "openai": _build_openai_tts},
}
"""For each provider setting: built-in name -> factory(settings)."""


def load_factory(reference: str, *, setting: str = "provider") -> Callable[[Settings], Any]:
    """Import ``module:attribute`` (dots allowed in the attribute) and return it; it must be callable."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{setting}={reference!r}: expected 'module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{setting}={reference!r}: cannot import module {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            message = f"{setting}={reference!r}: {module_name!r} has no attribute {attribute!r}"
            raise ValueError(message) from exc
    if not callable(target):
        raise ValueError(f"{setting}={reference!r} is not callable")
    return target  # type: ignore[no-any-return]


def provider_factory(kind: str, choice: str) -> Callable[[Settings], Any]:
    """The factory for provider ``kind`` (``vad``, ``stt``, ``turn_detector``, ``llm``, ``tts``)."""
    builtins = BUILTIN_PROVIDERS.get(kind)
    if builtins is None:
        raise ValueError(f"unknown provider kind {kind!r}; kinds: {', '.join(BUILTIN_PROVIDERS)}")
    setting = f"VOXGATE_{kind.upper()}"
    if ":" in choice:
        return load_factory(choice, setting=setting)
    factory = builtins.get(choice)
    if factory is None:
        raise ValueError(
            f"{setting}={choice!r} is not a known {kind} provider; choose one of "
            f"{', '.join(repr(name) for name in builtins)} or 'module:attribute' naming a factory(settings)"
        )
    return factory


def build_provider(kind: str, settings: Settings) -> Any:
    choice: str = getattr(settings, kind)
    return provider_factory(kind, choice)(settings)


def build_speech_stack(settings: Settings) -> SpeechStack:
    """Choose and construct every provider (loading embedded models). Blocking: run it off the event loop.

    Every setting is checked before any model loads, so a typo fails fast.
    """
    factories = {kind: provider_factory(kind, getattr(settings, kind)) for kind in BUILTIN_PROVIDERS}
    built: dict[str, Any] = {}
    try:
        for kind, factory in factories.items():
            built[kind] = factory(settings)
    except BaseException:
        for provider in built.values():
            close_provider(provider)
        raise
    return SpeechStack(
        vad=built["vad"],
        stt=built["stt"],
        turn_detector=built["turn_detector"],
        llm=built["llm"],
        tts=built["tts"],
    )


def close_provider(provider: object) -> None:
    """Call ``provider.close()`` when it has one (synchronous); errors are logged, not raised."""
    close = getattr(provider, "close", None)
    if not callable(close):
        return
    try:
        result = close()
        if asyncio.iscoroutine(result):
            result.close()  # an async close cannot run here; do not leave an un-awaited coroutine
            logger.debug("%r has an async close(); skipped in synchronous close", provider)
    except Exception:
        logger.exception("closing speech provider %r failed", provider)


def close_speech_stack(stack: SpeechStack) -> None:
    for provider in (stack.vad, stack.stt, stack.turn_detector, stack.llm, stack.tts):
        if provider is not None:
            close_provider(provider)


class SpeechStackLoader:
    """Builds the speech stack once, in a worker thread, and hands the same stack to every caller.

    Concurrent ``get()`` calls share one build. A failed build raises the same error to every caller
    waiting on it and is retried by the next ``get()``. Cancelling a caller does not cancel the build.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack: SpeechStack | None = None
        self._building: asyncio.Future[SpeechStack] | None = None
        self._generation = 0

    @property
    def loaded(self) -> bool:
        return self._stack is not None

    async def get(self) -> SpeechStack:
        if self._stack is not None:
            return self._stack
        if self._building is None:
            self._building = asyncio.ensure_future(self._build(self._generation))
            self._building.add_done_callback(_retrieve_exception)
        return await asyncio.shield(self._building)

    async def _build(self, generation: int) -> SpeechStack:
        try:
            stack = await asyncio.to_thread(build_speech_stack, self._settings)
        finally:
            if generation == self._generation:
                self._building = None
        if generation != self._generation:  # close() was called while building: do not keep it
            close_speech_stack(stack)
            raise RuntimeError("speech stack loader was closed while the stack was loading")
        self._stack = stack
        return stack

    def close(self) -> None:
        """Release the loaded stack (providers with a ``close()`` are closed). A later get() rebuilds."""
        self._generation += 1
        self._building = None
        stack, self._stack = self._stack, None
        if stack is not None:
            close_speech_stack(stack)


def _retrieve_exception(future: asyncio.Future[SpeechStack]) -> None:
    if not future.cancelled():
        future.exception()  # mark it retrieved even when every caller was cancelled
