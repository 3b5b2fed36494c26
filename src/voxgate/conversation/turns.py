"""Turn-taking: VAD with hysteresis, silence timers, the end-of-turn model, partial and final transcripts,
and the barge-in decision.

:class:`TurnTaker` is a synchronous state machine fed with 16 kHz float32 audio by the session loop. Model
work (partial decodes, the speculative final decode, the end-of-turn model, the back-channel check) runs in
tasks it owns; each task posts a :class:`TurnTaskResult` back into the session queue, and the session hands
it to :meth:`TurnTaker.on_result`. Every method returns the signals the session must act on, so all state
changes happen on the session loop, one event at a time.

Time is measured in audio samples, not wall clock: a client streaming silence gets exactly the configured
silence timers whatever the network or CPU load. When the client stops streaming altogether the session
reports the gap with :meth:`TurnTaker.on_gap`.

End of turn (after the user's last voiced frame):
- at ``speculative_pause_ms`` of silence the final decode starts speculatively (the transcript is then
  usually ready when the turn ends; it is discarded if the user goes on);
- at ``quick_pause_ms`` of silence the turn ends if the speculative transcript reads as a finished
  sentence (:func:`reads_as_complete`); otherwise the end-of-turn model is asked;
- if it says complete (p >= ``complete_probability``) the turn ends at once;
- otherwise it ends at ``min_silence``; if the model is confident the turn is unfinished
  (p < ``unfinished_probability``) it waits until ``max_silence``; ``max_silence`` always forces the end.
- a ``min_silence`` the client or agent set explicitly (``TurnDetection.explicit_silences``) is a
  promise: the quick endings above wait for it too. Unset, the adaptive default (1000 / 3000 ms with
  the quick endings) applies.

Overlap with the agent: speech that starts while a reply is active is held (no ``input.speech.started``) until
it qualifies as a barge-in: at least ``barge_in_ms`` of voiced audio that is not a back-channel (decided on
a quick transcript of the overlap, or on duration alone after ``barge_in_force_ms``). With
``interrupt_response`` off, held speech is announced only if it is still going on when the reply ends. Held
speech that ends before it qualifies is dropped without any event.

Resuming a turn: an ended turn stays open until the session commits its reply (when the reply's first
audio or tool call is ready). Speech that starts before then, if the session agrees (``may_resume``: it
drops the reply nobody has heard yet), continues the same utterance: same ``item_id``, the audio so far
plus the pause, so "No, I said Tuesday, | not Thursday." split at the comma's pause becomes one turn and
one transcript again. At most ``resume_window_ms`` of audio after the end of a turn is kept for this.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from voxgate.conversation.backchannel import is_backchannel
from voxgate.conversation.turn_signals import (
    FinalTranscript,
    PartialTranscript,
    SpeculativeTranscript,
    SpeechStarted,
    SpeechStopped,
    TurnSignal,
)
from voxgate.protocol.config import TurnDetection
from voxgate.speech.base import (
    INPUT_SAMPLE_RATE,
    FloatAudio,
    SpeechStack,
    SpeechToText,
    TurnDetector,
    VoiceActivityStream,
)

logger = logging.getLogger(__name__)

SAMPLES_PER_MS = INPUT_SAMPLE_RATE // 1000


@dataclass(frozen=True, slots=True)
class TurnTuning:
    start_frames: int = 2
    """Consecutive voiced VAD frames (32 ms each) that start speech."""
    stop_hysteresis: float = 0.15
    """A frame counts as silence below ``vad_threshold - stop_hysteresis``."""
    speculative_pause_ms: int = 60
    """Silence after which the final decode starts speculatively (discarded if the user goes on): 60 ms is
    two 32 ms VAD frames."""
    quick_pause_ms: int = 250
    """Silence after which the end-of-turn model is asked (a confident "complete" ends the turn here)."""
    number_pause_ms: int = 700
    """Silence that ends a turn whose transcript so far ends on a number (capped by ``min_silence``):
    people read numbers out in groups, and Whisper and smart-turn both take the pause after "five five
    five," in a phone number for the end ("Can you call me back at 555?", p 0.84)."""
    complete_probability: float = 0.5
    unfinished_probability: float = 0.1
    barge_in_ms: int = 400
    barge_in_force_ms: int = 1200
    partial_interval_ms: int = 600
    preroll_ms: int = 300
    max_utterance_ms: int = 30_000
    resume_window_ms: int = 3000
    """How long after the end of a turn speech may still continue it (while its reply is unheard)."""


CONTINUATION_WORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "so", "because", "to", "at", "for", "of", "in", "on", "with",
        "from", "by", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were", "um",
        "uh", "er", "like", "if", "that", "which", "who", "then", "than", "as", "about", "into", "i",
    }
)  # fmt: skip
"""Words a finished sentence does not end on: a transcript ending on one reads as cut off."""


MIN_COMPLETE_WORDS = 2
"""A one-word transcript never reads as complete on its own: Whisper writes "No." for the "No," that
starts "No, I said Tuesday, not Thursday." when the audio stops at the comma's pause."""


_ENDS_ON_NUMBER = re.compile(r"\d[\d\-.,:/]*[.?!]*[\"')”’]*$")


def ends_on_number(transcript: str | None) -> bool:
    """Whether a transcript ends on digits ("... at 555?", "order AB123."): perhaps the first group of a
    number the user is still reading out."""
    return bool(_ENDS_ON_NUMBER.search((transcript or "").strip()))


def reads_as_complete(transcript: str | None) -> bool:
    """Whether a transcript ends a sentence: at least :data:`MIN_COMPLETE_WORDS` words, terminal
    punctuation (not an ellipsis) after a word that can end one. Whisper punctuates from the words and the
    intonation, so this is a second opinion on the end-of-turn model, not a replacement for it (a one-word
    answer is left to that model)."""
    text = (transcript or "").strip().rstrip("\"'”’)")
    if not text.endswith((".", "?", "!")) or text.endswith(("..", "…")):
        return False
    words = text.rstrip(".?!").split()
    return len(words) >= MIN_COMPLETE_WORDS and words[-1].lower().strip(",;:\"'“‘(") not in CONTINUATION_WORDS


TaskKind = Literal["partial", "final", "detector", "backchannel"]


@dataclass(frozen=True, slots=True)
class TurnTaskResult:
    """Posted into the session queue when a turn-taking task finishes."""

    generation: int
    kind: TaskKind
    value: Any
    audio_samples: int


@dataclass(slots=True)
class _Utterance:
    generation: int
    item_id: str
    chunks: list[FloatAudio] = field(default_factory=list)
    samples: int = 0
    voiced_samples: int = 0
    silence_samples: int = 0
    speaking: bool = True
    announced: bool = False
    held: bool = False
    backchannel: bool = False
    backchannel_check: bool = False
    last_partial_at: int = 0
    partial_pending: bool = False
    last_partial_text: str = ""
    speculative_samples: int | None = None
    speculative_text: str | None = None
    speculative_complete: bool = False
    """``reads_as_complete(speculative_text)``, computed once when the text arrives (not per frame)."""
    speculative_number: bool = False
    """``ends_on_number(speculative_text)``."""
    detector_samples: int | None = None
    detector_probability: float | None = None
    last_voiced_monotonic: float = 0.0

    def audio(self) -> FloatAudio:
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0] if self.chunks else np.zeros(0, np.float32)


@dataclass(slots=True)
class _Finalizing:
    item_id: str
    speech_end_monotonic: float


class TurnTaker:
    def __init__(
        self,
        vad: VoiceActivityStream,
        stt: SpeechToText,
        detector: TurnDetector | None,
        *,
        post: Callable[[TurnTaskResult], None],
        new_item_id: Callable[[], str],
        tuning: TurnTuning | None = None,
        may_resume: Callable[[], bool] | None = None,
    ) -> None:
        """``may_resume``: asked when speech starts shortly after a turn ended whose transcript the session
        has; true means the session dropped the reply nobody heard yet and the turn continues."""
        self._vad = vad
        self._stt = stt
        self._detector = detector
        self._post = post
        self._new_item_id = new_item_id
        self.tuning = tuning or TurnTuning()
        self.turn_detection = TurnDetection()
        self.keyterms: tuple[str, ...] = ()
        self._frame = vad.frame_samples
        self._pending = np.zeros(0, np.float32)
        self._preroll: list[FloatAudio] = []
        self._preroll_samples = 0
        self._voiced_run = 0
        self._generation = 0
        self._utterance: _Utterance | None = None
        self._finalizing: dict[int, _Finalizing] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._speculative: asyncio.Task[None] | None = None
        self._may_resume = may_resume
        self._ended: _Utterance | None = None
        """The last ended turn, with the audio since, while speech may still continue it."""
        self._ended_trailing = 0
        self.agent_active = False

    @classmethod
    def for_stack(
        cls,
        stack: SpeechStack,
        *,
        post: Callable[[TurnTaskResult], None],
        new_item_id: Callable[[], str],
        tuning: TurnTuning | None = None,
        may_resume: Callable[[], bool] | None = None,
    ) -> TurnTaker:
        """A turn-taker on ``stack``'s models (its own VAD stream)."""
        return cls(
            stack.vad.create_stream(),
            stack.stt,
            stack.turn_detector,
            post=post,
            new_item_id=new_item_id,
            tuning=tuning,
            may_resume=may_resume,
        )

    # --- configuration ----------------------------------------------------------------------------
    def configure(self, turn_detection: TurnDetection, keyterms: Sequence[str]) -> None:
        self.turn_detection = turn_detection
        self.keyterms = tuple(keyterms)

    @property
    def in_utterance(self) -> bool:
        return self._utterance is not None

    @property
    def task_count(self) -> int:
        """Model tasks running (for leak checks)."""
        return len(self._tasks)

    @property
    def busy(self) -> bool:
        """An utterance is under way or its final transcript is still being decoded."""
        return self._utterance is not None or bool(self._finalizing)

    # --- input ------------------------------------------------------------------------------------
    def feed(self, audio: FloatAudio) -> list[TurnSignal]:
        signals: list[TurnSignal] = []
        buffer = np.concatenate((self._pending, audio)) if self._pending.size else audio
        frame = self._frame
        full = (buffer.size // frame) * frame
        threshold = self.turn_detection.vad_threshold
        stop_threshold = max(0.0, threshold - self.tuning.stop_hysteresis)
        for start in range(0, full, frame):
            chunk = buffer[start : start + frame]
            probability = self._vad.speech_probability(chunk)
            self._on_frame(chunk, probability, threshold, stop_threshold, signals)
        self._pending = buffer[full:].copy() if full < buffer.size else np.zeros(0, np.float32)
        return signals

    def on_gap(self, milliseconds: float) -> list[TurnSignal]:
        """The client sent no audio for this long: count it as silence."""
        signals: list[TurnSignal] = []
        utterance = self._utterance
        if utterance is not None:
            utterance.speaking = False
            utterance.silence_samples += int(milliseconds * SAMPLES_PER_MS)
            self._check_end(utterance, signals)
        return signals

    def set_agent_active(self, active: bool) -> list[TurnSignal]:
        self.agent_active = active
        if active:
            self._ended = None  # the reply to it is being heard: that turn can no longer go on
        signals: list[TurnSignal] = []
        utterance = self._utterance
        if not active and utterance is not None and utterance.held:
            if utterance.backchannel or not utterance.speaking:
                self._drop(utterance)
            else:
                utterance.held = False
                self._announce(utterance, signals, barge_in=False)
        return signals

    def _on_frame(
        self,
        chunk: FloatAudio,
        probability: float,
        threshold: float,
        stop_threshold: float,
        signals: list[TurnSignal],
    ) -> None:
        utterance = self._utterance
        voiced = probability >= threshold
        if utterance is None:
            self._remember_preroll(chunk)
            if (ended := self._ended) is not None:
                ended.chunks.append(chunk)
                ended.samples += chunk.size
                self._ended_trailing += chunk.size
                if self._ended_trailing > self.tuning.resume_window_ms * SAMPLES_PER_MS:
                    self._ended = None
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self.tuning.start_frames:
                self._voiced_run = 0
                self._start_utterance(signals)
            return
        utterance.chunks.append(chunk)
        utterance.samples += chunk.size
        if voiced or (utterance.speaking and probability >= stop_threshold):
            utterance.voiced_samples += chunk.size
            utterance.last_voiced_monotonic = time.monotonic()
            if not utterance.speaking:
                utterance.speaking = True
                self._invalidate_speculation(utterance)
            utterance.silence_samples = 0
            self._while_speaking(utterance, signals)
        else:
            utterance.speaking = False
            utterance.silence_samples += chunk.size
            self._check_end(utterance, signals)
        if (
            utterance is self._utterance
            and utterance.samples >= self.tuning.max_utterance_ms * SAMPLES_PER_MS
        ):
            self._end_turn(utterance, signals)

    def _remember_preroll(self, chunk: FloatAudio) -> None:
        self._preroll.append(chunk)
        self._preroll_samples += chunk.size
        limit = self.tuning.preroll_ms * SAMPLES_PER_MS
        while self._preroll and self._preroll_samples - self._preroll[0].size >= limit:
            self._preroll_samples -= self._preroll.pop(0).size

    def _start_utterance(self, signals: list[TurnSignal]) -> None:
        ended, self._ended = self._ended, None
        if ended is not None and not self.agent_active and self._resumable(ended):
            self._resume(ended, signals)
            return
        self._generation += 1
        utterance = _Utterance(generation=self._generation, item_id=self._new_item_id())
        utterance.chunks = list(self._preroll)
        utterance.samples = self._preroll_samples
        utterance.voiced_samples = self.tuning.start_frames * self._frame
        utterance.last_voiced_monotonic = time.monotonic()
        self._preroll = []
        self._preroll_samples = 0
        self._utterance = utterance
        if self.agent_active:
            utterance.held = True
        else:
            self._announce(utterance, signals, barge_in=False)

    def _resumable(self, ended: _Utterance) -> bool:
        if ended.generation in self._finalizing:
            return True  # its transcript is still being decoded: the session has not acted on it yet
        return self._may_resume is not None and self._may_resume()

    def _resume(self, ended: _Utterance, signals: list[TurnSignal]) -> None:
        """Continue ``ended`` (same item): its audio, the pause since, and the speech starting now."""
        self._finalizing.pop(ended.generation, None)  # a late transcript of the shorter audio is void
        self._generation += 1
        utterance = _Utterance(generation=self._generation, item_id=ended.item_id)
        utterance.chunks = ended.chunks  # the frames since the end include the pre-roll
        utterance.samples = ended.samples
        utterance.voiced_samples = ended.voiced_samples + self.tuning.start_frames * self._frame
        utterance.last_voiced_monotonic = time.monotonic()
        self._vad_reset_preroll()
        self._utterance = utterance
        self._announce(utterance, signals, barge_in=False, resumed=True)

    def _announce(
        self, utterance: _Utterance, signals: list[TurnSignal], *, barge_in: bool, resumed: bool = False
    ) -> None:
        utterance.announced = True
        utterance.last_partial_at = utterance.voiced_samples
        signals.append(SpeechStarted(utterance.item_id, barge_in=barge_in, resumed=resumed))

    def _drop(self, utterance: _Utterance) -> None:
        self._invalidate_speculation(utterance)
        if self._utterance is utterance:
            self._utterance = None
        self._vad_reset_preroll()

    def _vad_reset_preroll(self) -> None:
        self._preroll = []
        self._preroll_samples = 0
        self._voiced_run = 0

    def _while_speaking(self, utterance: _Utterance, signals: list[TurnSignal]) -> None:
        tuning = self.tuning
        if utterance.held:
            if not self.turn_detection.interrupt_response or utterance.backchannel:
                if (
                    utterance.backchannel
                    and utterance.voiced_samples >= tuning.barge_in_force_ms * 2 * SAMPLES_PER_MS
                ):
                    utterance.backchannel = False  # a long "back-channel" is really the user talking
                return
            if utterance.voiced_samples >= tuning.barge_in_force_ms * SAMPLES_PER_MS:
                self._barge_in(utterance, signals)
            elif (
                utterance.voiced_samples >= tuning.barge_in_ms * SAMPLES_PER_MS
                and not utterance.backchannel_check
            ):
                utterance.backchannel_check = True
                self._spawn(utterance, "backchannel", self._transcribe(utterance.audio(), partial=True))
            return
        if (
            not utterance.partial_pending
            and utterance.voiced_samples - utterance.last_partial_at
            >= tuning.partial_interval_ms * SAMPLES_PER_MS
        ):
            utterance.partial_pending = True
            utterance.last_partial_at = utterance.voiced_samples
            self._spawn(utterance, "partial", self._transcribe(utterance.audio(), partial=True))

    def _barge_in(self, utterance: _Utterance, signals: list[TurnSignal]) -> None:
        utterance.held = False
        self._announce(utterance, signals, barge_in=True)

    def _check_end(self, utterance: _Utterance, signals: list[TurnSignal]) -> None:
        td = self.turn_detection
        tuning = self.tuning
        silence_ms = utterance.silence_samples / SAMPLES_PER_MS
        if utterance.held:
            # Held speech that pauses before qualifying is not a barge-in: drop it after a short pause.
            if silence_ms >= tuning.quick_pause_ms:
                self._drop(utterance)
            return
        if (
            silence_ms >= min(tuning.speculative_pause_ms, td.min_silence)
            and utterance.speculative_samples is None
        ):
            utterance.speculative_samples = utterance.samples
            utterance.speculative_text = None
            utterance.speculative_complete = False
            utterance.speculative_number = False
            self._speculative = self._spawn(
                utterance, "final", self._transcribe(utterance.audio(), partial=False)
            )
        if (
            self._detector is not None
            and silence_ms >= min(tuning.quick_pause_ms, td.min_silence)
            and utterance.detector_samples is None
            and not utterance.speculative_complete  # already decided: the transcript ends a sentence
        ):
            utterance.detector_samples = utterance.samples
            utterance.detector_probability = None
            self._spawn(utterance, "detector", self._completion(utterance.audio()))
        if silence_ms >= self._end_after_ms(utterance):
            self._end_turn(utterance, signals)

    def _end_after_ms(self, utterance: _Utterance) -> float:
        td = self.turn_detection
        # An explicit min_silence is a promise: no turn ends sooner. The adaptive default ends sooner when
        # the words or the end-of-turn model say the turn is over.
        promised = "min_silence" in td.explicit_silences
        quick = td.min_silence if promised else min(self.tuning.quick_pause_ms, td.min_silence)
        if utterance.speculative_number:
            # Neither the words nor the end-of-turn model can tell "at 555" from "at 555, 234, 5678".
            return td.min_silence if promised else min(self.tuning.number_pause_ms, td.min_silence)
        if utterance.speculative_complete:
            # A transcript that ends a sentence ends the turn at the quick pause without waiting for the
            # end-of-turn model, and overrules a hesitant one: smart-turn judges some complete lines
            # unfinished ("Thanks, that's all I needed. Goodbye." scored 0.01).
            return quick
        probability = utterance.detector_probability
        if probability is None:
            return td.min_silence
        if probability >= self.tuning.complete_probability:
            return quick
        if probability < self.tuning.unfinished_probability:
            return td.max_silence
        return td.min_silence

    def _end_turn(self, utterance: _Utterance, signals: list[TurnSignal]) -> None:
        self._utterance = None
        self._speculative = None  # a running speculative decode now belongs to the finalizing turn
        self._vad_reset_preroll()
        if not utterance.announced:
            self._drop(utterance)
            return
        now = time.monotonic()
        if utterance.samples < self.tuning.max_utterance_ms * SAMPLES_PER_MS:
            self._ended, self._ended_trailing = utterance, 0
        self._finalizing[utterance.generation] = _Finalizing(
            utterance.item_id, utterance.last_voiced_monotonic
        )
        signals.append(SpeechStopped(utterance.item_id, utterance.last_voiced_monotonic, now))
        if utterance.speculative_samples is not None and utterance.speculative_text is not None:
            signals.extend(self._finish(utterance.generation, utterance.speculative_text))
        elif utterance.speculative_samples is None:
            self._spawn(utterance, "final", self._transcribe(utterance.audio(), partial=False))
        # else: the speculative decode is still running and its result finishes the turn.

    def _finish(self, generation: int, text: str) -> list[TurnSignal]:
        finalizing = self._finalizing.pop(generation, None)
        if finalizing is None:
            return []
        return [FinalTranscript(finalizing.item_id, text.strip(), time.monotonic())]

    def _invalidate_speculation(self, utterance: _Utterance) -> None:
        utterance.speculative_samples = None
        utterance.speculative_text = None
        utterance.speculative_complete = False
        utterance.speculative_number = False
        utterance.detector_samples = None
        utterance.detector_probability = None
        if self._speculative is not None and not self._speculative.done():
            self._speculative.cancel()
        self._speculative = None

    # --- results ----------------------------------------------------------------------------------
    def on_result(self, result: TurnTaskResult) -> list[TurnSignal]:
        signals: list[TurnSignal] = []
        utterance = self._utterance
        current = utterance is not None and utterance.generation == result.generation
        if result.kind == "final":
            if result.generation in self._finalizing:
                signals.extend(self._finish(result.generation, result.value or ""))
            elif current and utterance is not None and utterance.speculative_samples == result.audio_samples:
                utterance.speculative_text = result.value or ""
                utterance.speculative_complete = reads_as_complete(utterance.speculative_text)
                utterance.speculative_number = ends_on_number(utterance.speculative_text)
                if utterance.announced and not utterance.held and utterance.speculative_text.strip():
                    signals.append(
                        SpeculativeTranscript(utterance.item_id, utterance.speculative_text.strip())
                    )
                if not utterance.speaking:
                    self._check_end(utterance, signals)
            return signals
        if not current or utterance is None:
            return signals
        if result.kind == "detector":
            if utterance.detector_samples == result.audio_samples and result.value is not None:
                utterance.detector_probability = float(result.value)
                if not utterance.speaking:
                    self._check_end(utterance, signals)
        elif result.kind == "partial":
            utterance.partial_pending = False
            text = (result.value or "").strip()
            if text and text != utterance.last_partial_text and utterance.announced:
                utterance.last_partial_text = text
                signals.append(PartialTranscript(utterance.item_id, text))
        elif result.kind == "backchannel" and utterance.held:
            text = (result.value or "").strip()
            if text and is_backchannel(text):
                utterance.backchannel = True
            elif text and self.agent_active and self.turn_detection.interrupt_response:
                self._barge_in(utterance, signals)
            # no text: decide on duration alone (barge_in_force_ms)
        return signals

    # --- tasks ------------------------------------------------------------------------------------
    async def _transcribe(self, audio: FloatAudio, *, partial: bool) -> str:
        return await self._stt.transcribe(audio, keyterms=self.keyterms, partial=partial)

    async def _completion(self, audio: FloatAudio) -> float:
        assert self._detector is not None
        return await self._detector.completion_probability(audio)

    def _spawn(
        self, utterance: _Utterance, kind: TaskKind, work: Coroutine[Any, Any, Any]
    ) -> asyncio.Task[None]:
        generation, samples = utterance.generation, utterance.samples

        async def run() -> None:
            try:
                value = await work
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("turn-taking %s task failed", kind)
                value = None
            self._post(TurnTaskResult(generation, kind, value, samples))

        task = asyncio.get_running_loop().create_task(run(), name=f"turn-{kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
