"""A session reports what only it knows to the telemetry its transport hands it
(``SessionDependencies.telemetry``): every finished turn with its timings, and the lag of every input
frame it processed. In-process engine with the speech doubles; the telemetry is the test's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.realtime.conftest import utterance
from tests.realtime.engine import close_session, input_audio, make_session
from voxgate.conversation.timings import TurnTimings
from voxgate.protocol.events import ReplyCreate, SessionUpdate

FRAME_MS = 100


@dataclass
class RecordingTelemetry:
    turns: list[TurnTimings] = field(default_factory=list)
    frame_lags: list[float] = field(default_factory=list)

    def turn_finished(self, timings: TurnTimings) -> None:
        self.turns.append(timings)

    def input_frame_processed(self, lag_seconds: float) -> None:
        self.frame_lags.append(lag_seconds)


def frames(audio: np.ndarray) -> list[np.ndarray]:
    step = 16 * FRAME_MS
    return [audio[i : i + step] for i in range(0, audio.size, step)]


async def test_turns_and_frame_lag_go_to_the_sessions_own_telemetry(tmp_path: Path) -> None:
    telemetry = RecordingTelemetry()
    session, sink = make_session(tmp_path, telemetry=telemetry)
    task = asyncio.create_task(session.run())
    session.push(SessionUpdate(session={}))
    ready = await sink.wait_for(lambda e: e["type"] == "session.ready")

    session.push(ReplyCreate())  # an agent turn: no user speech before it
    agent_reply = await sink.wait_for(lambda e: e["type"] == "reply.done")
    chunks = frames(utterance("hello there", speech_ms=600, silence_ms=900))
    for chunk in chunks:
        session.push(input_audio(chunk))
    started = await sink.wait_for(
        lambda e: e["type"] == "reply.started" and e["reply_id"] != agent_reply["reply_id"]
    )
    await sink.wait_for(lambda e: e["type"] == "reply.done" and e["reply_id"] == started["reply_id"])
    await close_session(session, task)

    assert [(t.session_id, t.reply_id) for t in telemetry.turns] == [
        (ready["session_id"], agent_reply["reply_id"]),
        (ready["session_id"], started["reply_id"]),
    ]
    agent_turn, user_turn = telemetry.turns
    assert agent_turn.end_of_turn is None and agent_turn.first_audio_sent is not None
    assert user_turn.end_of_turn is not None and user_turn.first_audio_sent is not None
    assert user_turn.speech_end is not None and user_turn.speech_end <= user_turn.end_of_turn
    assert len(telemetry.frame_lags) == len(chunks)
    assert all(lag >= 0 for lag in telemetry.frame_lags)
