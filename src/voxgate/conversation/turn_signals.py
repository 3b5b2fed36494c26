"""What turn-taking reports to the session: facts about the user's speech, as plain values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str
    barge_in: bool = False
    """True when this speech interrupts the active reply."""
    resumed: bool = False
    """True when this speech continues the turn that had just ended (same ``item_id``); the session has
    agreed to drop the reply to it (see ``may_resume``)."""


@dataclass(frozen=True, slots=True)
class PartialTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class SpeculativeTranscript:
    """The user paused and this is what they said so far (the speculative final decode). The turn may
    still go on; nothing is sent to the client. The session uses it to get the LLM ready."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str
    speech_end_monotonic: float
    decided_monotonic: float


@dataclass(frozen=True, slots=True)
class FinalTranscript:
    item_id: str
    text: str
    decoded_monotonic: float


TurnSignal = SpeechStarted | PartialTranscript | SpeculativeTranscript | SpeechStopped | FinalTranscript
