"""Speech-to-text with faster-whisper (CTranslate2): Whisper tiny.en by default, base selectable.

One utterance per call (the VAD has already segmented it): int8, beam 1, English, no timestamps, no
VAD filter inside whisper, no conditioning on previous text. Key terms are passed as whisper's
``hotwords`` prompt.

Short encoder window: Whisper pads every input to a 30 s window, and on 2 cores the encoder then costs
~300 ms whatever the utterance length (attention is quadratic in the window). CTranslate2 accepts shorter
inputs, so an utterance is encoded in a window of its own length plus :data:`WINDOW_PAD_SECONDS` of
silence, and at least ``stt_window_seconds`` (``VOXGATE_STT_WINDOW_SECONDS``; 30 restores Whisper's own
padding). The silence is audio, padded before the log-mel transform as Whisper pads its input. The model
was trained on 30 s windows and, given too short a one, can fail to stop; such a decode (no end token
within a budget of tokens per second of audio, or a repetitive text) is redone in the full window.
With key terms the full window is always used: hotwords were recognised less often in shorter windows
(5/7 against 7/7). docs/speech.md gives the word error rates per window size that chose the default.

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
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

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
WHISPER_WINDOW_FRAMES = 3000
"""Whisper's own encoder window: 30 s of 10 ms mel frames."""
FRAMES_PER_SECOND = 100
SAMPLES_PER_FRAME = INPUT_SAMPLE_RATE // FRAMES_PER_SECOND
WINDOW_PAD_SECONDS = 1.0
"""Silence after the utterance inside a short window: the model expects to see speech end."""
MAX_TOKENS_PER_SECOND = 8.0
"""Token budget of a short-window decode (fast speech is ~4 tokens/s); more means it failed to stop."""
MIN_TOKEN_BUDGET = 12
CUT_OFF_MARGIN = 2
"""A decode this close to its budget counts as cut off: CTranslate2 may stop a token or two short of
``max_length`` and returns no end token to tell a finished decode from a cut one."""
COMPRESSION_RATIO_LIMIT = 2.4
"""faster-whisper's threshold for a repetitive (hallucinated) text."""
MAX_PHRASE_REPEATS = 2
"""A phrase of 2-4 words said more than this many times in a row, or a single word more than
:data:`MAX_WORD_REPEATS` times, is the decoder looping ("10 of clubs 10 of clubs 10 of clubs 10 of" for
"ten of clubs" in an 8 s window): too short a text for the compression ratio to show it."""
MAX_WORD_REPEATS = 4
NO_SPEECH_PROBABILITY = 0.6
NO_SPEECH_LOGPROB = -1.0
NO_SPEECH_CERTAIN = 0.8
"""Above this no-speech probability a short-window decode is silence whatever its log-probability: in a
window of silent audio Whisper may write a confident "you" (p 0.96-0.99), while one spoken word ("yes",
"okay", "uh-huh", by Piper and espeak-ng) scored at most 0.32."""


def loops(text: str) -> bool:
    """Whether ``text`` repeats a word or a short phrase back to back more than a person would
    (:data:`MAX_PHRASE_REPEATS`, :data:`MAX_WORD_REPEATS`). Such a decode is redone in the full window,
    so a false alarm costs time, not words."""
    words = [word.strip(".,!?;:").lower() for word in text.split()]
    for size in range(1, 5):
        limit = MAX_WORD_REPEATS if size == 1 else MAX_PHRASE_REPEATS
        for start in range(len(words) - size * (limit + 1) + 1):
            phrase = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == phrase for k in range(1, limit + 1)):
                return True
    return False


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
        self.window_frames = int(
            min(WHISPER_WINDOW_FRAMES, max(0.0, settings.stt_window_seconds) * FRAMES_PER_SECOND)
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, self.multilingual, task="transcribe", language="en"
        )
        self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])
        self.short_window_decodes = 0
        self.full_window_fallbacks = 0
        self.executor = InferenceExecutor("stt", threads=1)
        self.partial_executor = InferenceExecutor("stt-partial", threads=1)
        self.partials_skipped = 0

    def decode(self, audio: FloatAudio, keyterms: Sequence[str] = ()) -> str:
        """Synchronous decode of one utterance (runs in the caller's thread)."""
        if self.window_frames < WHISPER_WINDOW_FRAMES and keyterm_prompt(keyterms) is None:
            text = self.decode_short_window(audio, keyterms)
            if text is not None:
                self.short_window_decodes += 1
                return text
            self.full_window_fallbacks += 1
        return self.decode_full_window(audio, keyterms)

    def decode_short_window(self, audio: FloatAudio, keyterms: Sequence[str] = ()) -> str | None:
        """Decode in a window sized to the utterance; ``None`` when the audio does not fit one or the
        decode did not end cleanly (the caller then uses the full window)."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        utterance_frames = audio.size // SAMPLES_PER_FRAME
        window = max(self.window_frames, utterance_frames + int(WINDOW_PAD_SECONDS * FRAMES_PER_SECOND))
        if window > WHISPER_WINDOW_FRAMES:
            return None
        # The window is filled with silent audio before the log-mel transform, as Whisper pads its own
        # input, not with zero-valued features: zeros there read as sound, not silence, after the
        # normalisation, and an utterance cut right after its last word was then misheard more often
        # (the speculative decode starts 64 ms after it: "capital of France" became "of friends").
        padding = window * SAMPLES_PER_FRAME - audio.size + SAMPLES_PER_FRAME
        features = self._model.feature_extractor(audio, padding=padding)[:, :window]
        encoder_output = self._model.encode(pad_or_trim(features, window))
        prompt = self._model.get_prompt(
            self._tokenizer, [], without_timestamps=True, hotwords=keyterm_prompt(keyterms)
        )
        budget = MIN_TOKEN_BUDGET + int(MAX_TOKENS_PER_SECOND * len(audio) / INPUT_SAMPLE_RATE)
        budget = min(budget, self._model.max_length - len(prompt))
        result = self._model.model.generate(
            encoder_output,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + budget,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
        )[0]
        tokens = result.sequences_ids[0]
        if len(tokens) >= budget - CUT_OFF_MARGIN:
            return None  # no end token within the budget: the short window confused the decoder
        text = self._tokenizer.decode(tokens).strip()
        if get_compression_ratio(text) > COMPRESSION_RATIO_LIMIT or loops(text):
            return None
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_CERTAIN or (
            result.no_speech_prob > NO_SPEECH_PROBABILITY and avg_logprob < NO_SPEECH_LOGPROB
        ):
            return ""
        if not any(character.isalnum() for character in text):
            return ""  # a lone "." for silence: a short window is less sure of "no speech" than the full one
        return text

    def decode_full_window(self, audio: FloatAudio, keyterms: Sequence[str] = ()) -> str:
        """faster-whisper's own decode: the utterance padded to Whisper's 30 s window."""
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
