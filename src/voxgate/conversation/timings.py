"""Per-turn latency timestamps (monotonic seconds), and the one structured log line per finished turn.

A session hands each finished turn to its telemetry
(:class:`~voxgate.conversation.session_telemetry.SessionTelemetry`): on the server the Prometheus exporter
(``/metrics``, ``/metrics/turns``), in tests and benchmarks whatever they pass.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

logger = logging.getLogger("voxgate.turns")


@dataclass(slots=True)
class TurnTimings:
    session_id: str
    reply_id: str | None = None
    speech_end: float | None = None
    """The user's last voiced audio frame was processed."""
    end_of_turn: float | None = None
    """The end-of-turn decision (``input.speech.stopped``)."""
    stt_final: float | None = None
    reply_start: float | None = None
    llm_first_token: float | None = None
    first_sentence: float | None = None
    tts_first_audio: float | None = None
    first_audio_sent: float | None = None

    def intervals_ms(self) -> dict[str, float | None]:
        def span(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * 1000, 2)

        return {
            "silence_to_decision_ms": span(self.speech_end, self.end_of_turn),
            "decision_to_transcript_ms": span(self.end_of_turn, self.stt_final),
            "transcript_to_llm_token_ms": span(self.stt_final, self.llm_first_token),
            "llm_token_to_sentence_ms": span(self.llm_first_token, self.first_sentence),
            "sentence_to_tts_audio_ms": span(self.first_sentence, self.tts_first_audio),
            "decision_to_first_audio_ms": span(self.end_of_turn, self.first_audio_sent),
            "speech_end_to_first_audio_ms": span(self.speech_end, self.first_audio_sent),
        }


def log_turn(timings: TurnTimings) -> None:
    """One INFO line on the ``voxgate.turns`` logger: the timestamps and their intervals, as JSON."""
    logger.info("turn %s", json.dumps({**asdict(timings), **timings.intervals_ms()}))
