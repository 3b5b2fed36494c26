"""Per-turn latency timestamps (monotonic seconds), logged as one structured line per turn.

The Prometheus exporter (``/metrics``) and the benchmark read the same records: every finished turn is
appended to :data:`RECENT_TURNS` and handed to each callback in :data:`TURN_OBSERVERS`.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
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


RECENT_TURNS: deque[TurnTimings] = deque(maxlen=1000)
TURN_OBSERVERS: list[Callable[[TurnTimings], None]] = []
FRAME_LAG_OBSERVERS: list[Callable[[float], None]] = []
"""Called with the seconds from an ``input.audio`` frame reaching its session to the end of its processing."""


def record_turn(timings: TurnTimings) -> None:
    RECENT_TURNS.append(timings)
    logger.info("turn %s", json.dumps({**asdict(timings), **timings.intervals_ms()}))
    for observer in TURN_OBSERVERS:
        try:
            observer(timings)
        except Exception:
            logger.exception("turn observer failed")


def record_frame_lag(seconds: float) -> None:
    for observer in FRAME_LAG_OBSERVERS:
        try:
            observer(seconds)
        except Exception:
            logger.exception("frame lag observer failed")
