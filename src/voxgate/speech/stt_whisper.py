"""Speech-to-text with faster-whisper (CTranslate2): Whisper tiny.en by default, base selectable.

One utterance per call (the VAD has already segmented it): int8, beam 1, English, no timestamps, no
VAD filter inside whisper, no conditioning on previous text. Key terms are passed as whisper's
``hotwords`` prompt.

Finals and partials run in two executors over one model loaded with two CTranslate2 workers
(``num_workers=2``; the weights are shared), so a final never queues behind a partial: a CTranslate2
decode cannot be interrupted, and with one worker a partial started just before the user stopped would
delay the final by a whole decode. Finals run one at a time. ``partial=True`` decodes are best-effort:
they are skipped (``""``) while another partial runs or a final is queued or running, so they only use
CPU that no final is waiting for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxgate.config import Settings
from voxgate.speech.base import INPUT_SAMPLE_RATE, FloatAudio
from voxgate.speech.executor import InferenceExecutor
from voxgate.speech.models import resolve_stt_model

logger = logging.getLogger(__name__)

MAX_UTTERANCE_SECONDS = 30.0
"""Whisper's window. Longer audio is decoded in 30 s pieces by faster-whisper; we keep the last 30 s of
a partial and let a final use faster-whisper's own sequential windows."""
MIN_UTTERANCE_SECONDS = 0.1
MAX_HOTWORDS_CHARS = 400


def keyterm_prompt(keyterms: Sequence[str]) -> str | None:
    """Key terms as one comma-separated prompt for whisper, or ``None`` when there are none."""
    terms = [term.strip() for term in keyterms if term and term.strip()]
    if not terms:
        return None
    return ", ".join(dict.fromkeys(terms))[:MAX_HOTWORDS_CHARS]


class WhisperSTT:
    """``WhisperSTT(settings)`` or ``WhisperSTT(model_dir=..., threads=2)``.

    Without ``model_dir`` the model is ``settings.stt_model`` (``tiny.en``, ``base`` or a CTranslate2
    directory) located by ``resolve_stt_model``. Loading is synchronous and safe in a worker thread.
    """

    sample_rate = INPUT_SAMPLE_RATE

    def __init__(
        self, settings: Settings | None = None, *, model_dir: Path | None = None, threads: int | None = None
    ) -> None:
        from faster_whisper import WhisperModel  # heavy import: only when this provider is chosen

        settings = settings or Settings()
        self.model_dir = model_dir or resolve_stt_model(settings)
        self.threads = threads or settings.stt_threads
        self._model = WhisperModel(
            str(self.model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=self.threads,
            num_workers=2,
            local_files_only=True,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        self.executor = InferenceExecutor("stt", threads=1)
        self.partial_executor = InferenceExecutor("stt-partial", threads=1)
        self.partials_skipped = 0

    def decode(self, audio: FloatAudio, keyterms: Sequence[str] = ()) -> str:
        """Synchronous decode of one utterance (runs in the caller's thread)."""
        segments, _info = self._model.transcribe(
            np.ascontiguousarray(audio, dtype=np.float32),
            language="en",
            task="transcribe",
            beam_size=1,
            best_of=1,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            hotwords=keyterm_prompt(keyterms),
        )
        return " ".join(segment.text.strip() for segment in segments if segment.text.strip())

    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1)), -1.0, 1.0)
        if len(audio) < MIN_UTTERANCE_SECONDS * INPUT_SAMPLE_RATE:
            return ""
        if partial:
            if self.executor.queue_depth > 0 or self.partial_executor.queue_depth > 0:
                self.partials_skipped += 1
                return ""
            audio = audio[-int(MAX_UTTERANCE_SECONDS * INPUT_SAMPLE_RATE) :]
            return await self.partial_executor.run(self.decode, audio, tuple(keyterms))
        return await self.executor.run(self.decode, audio, tuple(keyterms))

    def close(self) -> None:
        self.executor.shutdown()
        self.partial_executor.shutdown()
