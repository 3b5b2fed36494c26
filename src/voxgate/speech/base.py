"""Provider protocols. The conversation engine sees models only through these.

Conventions:
- Audio into VAD, STT and the turn detector is mono float32 in [-1, 1] at ``INPUT_SAMPLE_RATE`` (16 kHz).
- TTS yields mono int16 chunks at the provider's own ``sample_rate``; the engine resamples and encodes.
- Async methods never block the event loop: implementations run inference in their own bounded
  executor (see ``speech/executor.py``) with explicit thread counts.
- Cancelling the awaiting task (or closing an async iterator) must stop the work as soon as possible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

INPUT_SAMPLE_RATE = 16_000

FloatAudio = NDArray[np.float32]
PcmAudio = NDArray[np.int16]


# --- voice activity detection ------------------------------------------------------------------
@runtime_checkable
class VoiceActivityStream(Protocol):
    """Per-session VAD state. ``frame_samples`` samples at 16 kHz per call (512 for Silero)."""

    frame_samples: int

    def speech_probability(self, frame: FloatAudio) -> float:
        """Probability that ``frame`` (exactly ``frame_samples`` samples) is speech. Fast (< 1 ms)."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Shared model; one ``VoiceActivityStream`` per session."""

    def create_stream(self) -> VoiceActivityStream: ...


# --- speech-to-text -----------------------------------------------------------------------------
@runtime_checkable
class SpeechToText(Protocol):
    async def transcribe(
        self, audio: FloatAudio, *, keyterms: Sequence[str] = (), partial: bool = False
    ) -> str:
        """Transcribe one utterance. ``partial=True`` marks a best-effort re-decode of a growing
        utterance: an implementation may skip it (return ``""``) when a final decode is waiting or the
        budget is spent."""
        ...


# --- end of turn ------------------------------------------------------------------------------
@runtime_checkable
class TurnDetector(Protocol):
    async def completion_probability(self, audio: FloatAudio) -> float:
        """Probability that the user's turn is complete, given the utterance audio so far."""
        ...


# --- LLM ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ToolSchema:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai_tool(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry (also what Hugging Face chat templates expect)."""
        parameters = self.parameters or {"type": "object", "properties": {}}
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    """Assistant messages only: the calls the model made in that turn."""
    tool_call_id: str | None = None
    """Tool messages only: which call this is the result of."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


LLMEvent = TextDelta | ToolCallRequest


class LanguageModelError(RuntimeError):
    """The LLM could not produce a reply (remote server unreachable, timeout, HTTP error, bad model
    output, inference failure). Raised from ``LanguageModel.stream``; the engine turns it into an apology."""


class SpeechServiceError(RuntimeError):
    """A remote STT or TTS service failed (unreachable, timeout, HTTP error, malformed response)."""


@runtime_checkable
class LanguageModel(Protocol):
    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Stream a reply: text deltas as they are generated, and tool calls once complete.
        ``session_key`` lets an implementation keep a per-session prompt prefix cached.
        Closing the iterator early stops generation."""
        ...


@runtime_checkable
class PromptPrefilling(Protocol):
    """A language model that keeps a prompt cache per ``session_key`` (the embedded llama.cpp model). The
    engine prefills it while the user speaks and releases it when the session ends."""

    @property
    def busy(self) -> bool:
        """The model is working: a best-effort prefill now would only queue behind it."""
        ...

    async def warm(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> None:
        """Prefill the prompt of ``messages`` (no reply is generated)."""
        ...

    async def anticipate(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> int:
        """Start the reply to ``messages`` before it is asked for; a ``stream`` of the same prompt continues
        it. Returns the tokens generated."""
        ...

    def forget_session(self, session_key: str) -> None:
        """Release the session's cached prompt."""
        ...


# --- text-to-speech -----------------------------------------------------------------------------
@runtime_checkable
class TextToSpeech(Protocol):
    sample_rate: int

    def has_voice(self, voice_id: str) -> bool:
        """Whether the spec voice id (``ivy``, ``james``, ...) maps onto an installed voice."""
        ...

    def synthesize(self, text: str, *, voice_id: str) -> AsyncIterator[PcmAudio]:
        """Speak ``text`` (one sentence or clause) as int16 chunks at ``sample_rate``."""
        ...


@dataclass(slots=True)
class SpeechStack:
    vad: VoiceActivityDetector
    stt: SpeechToText
    turn_detector: TurnDetector | None
    llm: LanguageModel
    tts: TextToSpeech
