"""Piper text-to-speech (piper-tts 1.8, the packaged ``en_US-joe-medium`` voice by default).

Catalogue ids map to ``joe`` or one of its re-voiced variants (``voice_map.PIPER_DEFAULTS``,
``voice_variants``: Praat's "Change gender" on each chunk, in the same executor call). The engine hands
over one sentence or clause at a time; Piper phonemizes it (espeak-ng data bundled
in piper-tts) and runs the VITS ONNX model once per sentence, so each sentence arrives as one int16
chunk. Inference runs in the TTS ``InferenceExecutor`` (one worker; ``settings.tts_threads`` ORT
threads) as foreground work (``executor.FOREGROUND``): the embedded LLM pauses between tokens meanwhile.
Ids that ``VOXGATE_VOICE_MAP`` routes to espeak-ng are spoken by an ``EspeakTTS`` and resampled to this
provider's ``sample_rate`` when the rates differ.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soxr
from piper import AudioChunk, PiperConfig, PiperVoice

from voxgate.config import Settings
from voxgate.speech.base import PcmAudio
from voxgate.speech.executor import FOREGROUND, InferenceExecutor
from voxgate.speech.models import resolve_model
from voxgate.speech.tts_espeak import EspeakTTS
from voxgate.speech.voice_map import PACKAGED_PIPER_VOICE, InstalledVoice, VoiceMap
from voxgate.speech.voice_variants import apply_variant, variants_available

logger = logging.getLogger(__name__)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPEAKABLE = re.compile(r"[0-9A-Za-z\u00c0-\uffff]")


def load_piper_voice(model_path: Path, *, threads: int) -> PiperVoice:
    """A ``PiperVoice`` whose ONNX session uses exactly ``threads`` intra-op threads."""
    config_path = Path(f"{model_path}.json")
    if not config_path.is_file():
        raise FileNotFoundError(f"Piper voice config {config_path} not found (expected beside {model_path})")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    with config_path.open(encoding="utf-8") as handle:
        config = PiperConfig.from_dict(json.load(handle))
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


class PiperTTS:
    """``PiperTTS(settings)``; loads every Piper voice the voice map uses (synchronous, thread-safe)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        voice_map: VoiceMap | None = None,
        threads: int | None = None,
    ) -> None:
        settings = settings or Settings()
        self.voice_map = voice_map or VoiceMap.from_settings(settings, "piper")
        threads = threads or settings.tts_threads
        self._voices: dict[str, PiperVoice] = {}
        installed_voices = self.voice_map.installed_voices()
        self.variants = variants_available()
        if not self.variants and any(voice.variant for voice in installed_voices):
            logger.warning(
                "praat-parselmouth is not installed: every voice id is spoken by its base voice "
                "(female ids too); pip install praat-parselmouth"
            )
        for installed in sorted(installed_voices, key=str):
            if installed.engine == "piper" and installed.model not in self._voices:
                path = (
                    resolve_model("piper-joe", settings)
                    if installed.model == PACKAGED_PIPER_VOICE
                    else Path(installed.model).expanduser()
                )
                self._voices[installed.model] = load_piper_voice(path, threads=threads)
        if PACKAGED_PIPER_VOICE in self._voices:
            self.sample_rate = self._voices[PACKAGED_PIPER_VOICE].config.sample_rate
        elif self._voices:
            self.sample_rate = next(iter(self._voices.values())).config.sample_rate
        else:
            self.sample_rate = EspeakTTS.sample_rate
        uses_espeak = any(voice.engine == "espeak" for voice in self.voice_map.installed_voices())
        self._espeak = EspeakTTS(settings, voice_map=self.voice_map) if uses_espeak else None
        self.executor = InferenceExecutor("tts", threads=1)

    def has_voice(self, voice_id: str) -> bool:
        return self.voice_map.has_voice(voice_id)

    def installed_voice(self, voice_id: str) -> InstalledVoice:
        installed = self.voice_map.resolve(voice_id)
        if installed is None:
            raise ValueError(f"unknown voice {voice_id!r}")
        return installed

    async def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        installed = self.installed_voice(voice_id)
        text = _CONTROL_CHARACTERS.sub(" ", text).strip()
        if not _SPEAKABLE.search(text):
            return
        if installed.engine == "espeak":
            assert self._espeak is not None
            speech = self._resampled(self._espeak.speak(text, installed.name), self._espeak.sample_rate)
            async with contextlib.aclosing(speech) as stream:
                async for chunk in stream:
                    yield chunk
            return
        voice = self._voices[installed.model]
        variant = installed.variant if self.variants else None

        def start() -> Iterator[AudioChunk]:
            return iter(voice.synthesize(text))

        def next_chunk(iterator: Iterator[AudioChunk]) -> PcmAudio | None:
            with FOREGROUND.running():  # the listener waits for this audio: the LLM pauses meanwhile
                chunk = next(iterator, None)
                if chunk is None:
                    return None
                samples = chunk.audio_int16_array
                if variant is not None:
                    samples = apply_variant(samples, voice.config.sample_rate, variant)
                return samples

        chunks = await self.executor.run(start)
        resampler = self._resampler(voice.config.sample_rate)
        while (samples := await self.executor.run(next_chunk, chunks)) is not None:
            if resampler is not None:
                samples = resampler.resample_chunk(samples)
            if len(samples):
                yield samples
        if resampler is not None and len(tail := resampler.resample_chunk(np.zeros(0, np.int16), last=True)):
            yield tail

    def synthesize_blocking(self, text: str, voice_name: str = PACKAGED_PIPER_VOICE) -> PcmAudio:
        """Whole-text synthesis in the caller's thread (benchmarks and tools). ``voice_name``: a Piper
        voice with an optional ``+variant`` (``joe+f1``)."""
        installed = InstalledVoice("piper", voice_name)
        voice = self._voices[installed.model]
        pieces = [chunk.audio_int16_array for chunk in voice.synthesize(text)]
        pcm = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        if installed.variant is not None and self.variants:
            pcm = apply_variant(pcm, voice.config.sample_rate, installed.variant)
        return pcm

    def _resampler(self, source_rate: int) -> soxr.ResampleStream | None:
        if source_rate == self.sample_rate:
            return None
        return soxr.ResampleStream(source_rate, self.sample_rate, 1, dtype="int16")

    async def _resampled(self, chunks: AsyncIterator[PcmAudio], source_rate: int) -> AsyncIterator[PcmAudio]:
        resampler = self._resampler(source_rate)
        async with contextlib.aclosing(chunks) as stream:
            async for chunk in stream:
                out = resampler.resample_chunk(chunk) if resampler is not None else chunk
                if len(out):
                    yield out
        if resampler is not None and len(tail := resampler.resample_chunk(np.zeros(0, np.int16), last=True)):
            yield tail

    def close(self) -> None:
        self.executor.shutdown()
