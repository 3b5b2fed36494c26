"""A finished turn's latency stages, from the engine's :class:`~voxgate.conversation.timings.TurnTimings`
(the histograms of ``/metrics``, the ``stages_ms`` of ``/metrics/turns`` and the latency benchmark)."""

from __future__ import annotations

from voxgate.conversation.timings import TurnTimings

TURN_STAGES: tuple[tuple[str, str, str], ...] = (
    ("speech_end_to_end_of_turn", "speech_end", "end_of_turn"),
    ("end_of_turn_to_stt_final", "end_of_turn", "stt_final"),
    ("stt_final_to_llm_first_token", "stt_final", "llm_first_token"),
    ("llm_first_token_to_first_sentence", "llm_first_token", "first_sentence"),
    ("first_sentence_to_tts_first_audio", "first_sentence", "tts_first_audio"),
    ("tts_first_audio_to_first_audio_sent", "tts_first_audio", "first_audio_sent"),
    ("end_of_turn_to_first_audio_sent", "end_of_turn", "first_audio_sent"),
    ("speech_end_to_first_audio_sent", "speech_end", "first_audio_sent"),
)
"""(stage, from field, to field) of :class:`TurnTimings`. The last two are totals: server overhead plus
model time after the end-of-turn decision, and the server-side voice-to-voice latency."""


def stage_seconds(timings: TurnTimings) -> dict[str, float | None]:
    """Every stage of :data:`TURN_STAGES` in seconds (None when either end was not reached)."""
    result: dict[str, float | None] = {}
    for stage, start_field, end_field in TURN_STAGES:
        start, end = getattr(timings, start_field), getattr(timings, end_field)
        result[stage] = None if start is None or end is None else max(0.0, end - start)
    return result
