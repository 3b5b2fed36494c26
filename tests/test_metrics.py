"""/metrics and /metrics/turns against a real server process (speech doubles), and the executor metrics
in-process: a measured turn shows up in the stage histograms, the JSON view and the log; sessions, error
codes, frame lag, event-loop lag and process gauges are exported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from bench.latency import run_conversations
from bench.metrics_scrape import Scrape, parse
from bench.scripted_caller import EncodedLine
from prometheus_client import REGISTRY, generate_latest

from tests.doubles import DOUBLES_ENV, MS_PER_WORD, PHRASE_TONES, tone
from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.metrics_polling import poll_until, scrape
from tests.realtime.conftest import INSTANT_AUDIO_ENV
from tests.realtime.protocol_client import ProtocolClient
from voxgate.audio.resample import resample, to_int16
from voxgate.speech.executor import InferenceExecutor
from voxgate.telemetry import process_feeds
from voxgate.telemetry.turn_stages import TURN_STAGES

FRAME_MS = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {**DOUBLES_ENV, **INSTANT_AUDIO_ENV, "PYTHONPATH": SERVER_PYTHONPATH}
    with LiveServer(tmp_path_factory.mktemp("metrics"), env=env) as live:
        yield live


async def get(server: LiveServer, path: str, key: str | None = "", **params: object) -> httpx.Response:
    """GET ``path``; ``key`` "" = the server's key, None = no Authorization header."""
    headers = {} if key is None else server.auth_headers(key or None)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        return await http.get(path, params=params, headers=headers)


async def open_ready(server: LiveServer, key: str | None = None) -> tuple[ProtocolClient, str]:
    client = await ProtocolClient.open(server.ws_url, headers=server.auth_headers(key))
    await client.update(system_prompt="You are terse.")
    ready = await client.wait_for("session.ready")
    return client, ready["session_id"]


def utterance(phrase: str) -> np.ndarray:
    silence = np.zeros(16 * 1300, np.float32)
    return np.concatenate([np.zeros(1600, np.float32), tone(PHRASE_TONES[phrase], 900), silence])


def stage_count(scraped: Scrape, stage: str) -> float:
    return scraped.value("voxgate_turn_stage_seconds_count", stage=stage) or 0.0


async def test_a_turn_is_measured_in_histograms_json_and_log(server: LiveServer) -> None:
    before = await scrape(server)
    client, session_id = await open_ready(server)
    during = await scrape(server)
    assert during.value("voxgate_sessions_active") == (before.value("voxgate_sessions_active") or 0) + 1
    assert (
        during.total("voxgate_sessions_started_total") == before.total("voxgate_sessions_started_total") + 1
    )

    audio = utterance("hello there")
    await client.send_audio(audio, chunk_ms=FRAME_MS)
    started = await client.wait_for("reply.started")
    await client.wait_for("reply.done", reply_id=started["reply_id"])
    after_turn = await scrape(server)

    for stage, _, _ in TURN_STAGES:
        assert stage_count(after_turn, stage) == stage_count(before, stage) + 1, stage
    frames = len(range(0, to_int16(resample(audio, 16_000, 24_000)).size, 24 * FRAME_MS))
    lag = after_turn.histogram_since(before, "voxgate_input_frame_lag_seconds")
    assert lag.count == frames
    assert lag.fraction_at_most(5.0) == 1.0

    response = await get(server, "/metrics/turns", session_id=session_id)
    assert response.status_code == 200
    (turn,) = response.json()["turns"]
    assert turn["session_id"] == session_id
    assert turn["reply_id"] == started["reply_id"]
    assert turn["user_turn"] is True
    stages = turn["stages_ms"]
    assert all(value is not None and value >= 0 for value in stages.values()), stages
    total = stages["speech_end_to_end_of_turn"] + stages["end_of_turn_to_first_audio_sent"]
    assert stages["speech_end_to_first_audio_sent"] == pytest.approx(total, abs=0.01)

    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")
    ended = await scrape(server)
    assert ended.value("voxgate_sessions_active") == before.value("voxgate_sessions_active")
    assert (
        ended.value("voxgate_sessions_ended_total", how="ended")
        == (before.value("voxgate_sessions_ended_total", how="ended") or 0) + 1
    )
    await client.wait_closed()

    log_lines = [line for line in server.log_text().splitlines() if "voxgate.turns" in line]
    assert any(session_id in line and started["reply_id"] in line for line in log_lines), log_lines[-3:]


async def test_a_dropped_connection_ends_the_session_as_disconnected(server: LiveServer) -> None:
    before = await scrape(server)
    client, _ = await open_ready(server)
    await client.connection.close()
    disconnected_before = before.value("voxgate_sessions_ended_total", how="disconnected") or 0
    after = await poll_until(
        server,
        lambda s: s.value("voxgate_sessions_ended_total", how="disconnected") == disconnected_before + 1,
    )
    assert after.value("voxgate_sessions_active") == before.value("voxgate_sessions_active")


async def test_error_codes_are_counted(server: LiveServer) -> None:
    before = await scrape(server)
    client, _ = await open_ready(server)
    await client.send("{not json")
    await client.expect_error("invalid_format")
    await client.send({"type": "input.audio", "audio": "***"})
    await client.expect_error("invalid_audio")
    await client.connection.close()

    rejected = await ProtocolClient.open(server.ws_url, headers=server.auth_headers("vg_wrong_key"))
    await rejected.expect_error("unauthorized")
    await rejected.wait_closed()

    after = await scrape(server)
    for code in ("invalid_format", "invalid_audio", "unauthorized"):
        count = (after.value("voxgate_session_errors_total", code=code) or 0) - (
            before.value("voxgate_session_errors_total", code=code) or 0
        )
        assert count == 1, code


async def test_turns_are_private_to_their_project_and_need_a_key(server: LiveServer) -> None:
    client, session_id = await open_ready(server)
    await client.send_audio(utterance("okay"), chunk_ms=FRAME_MS)
    await client.wait_for("reply.done")
    await client.connection.close()

    missing = await get(server, "/metrics/turns", key=None)
    assert missing.status_code == 401
    assert missing.json()["detail"] == "Missing authorization header"
    assert (await get(server, "/metrics/turns", key="vg_nope")).status_code == 401

    own = await get(server, "/metrics/turns", session_id=session_id)
    assert [t["session_id"] for t in own.json()["turns"]] == [session_id]
    stranger = server.create_api_key()
    other = await get(server, "/metrics/turns", key=stranger, session_id=session_id)
    assert other.status_code == 200
    assert other.json() == {"turns": []}
    assert (await get(server, "/metrics/turns", key=stranger)).json() == {"turns": []}

    assert (await get(server, "/metrics/turns", limit=0)).status_code == 422


async def test_process_event_loop_and_task_gauges_are_exported(server: LiveServer) -> None:
    scraped = await poll_until(server, lambda s: (s.value("voxgate_event_loop_lag_seconds_count") or 0) > 0)
    assert (scraped.value("process_open_fds") or 0) > 0
    assert (scraped.value("process_resident_memory_bytes") or 0) > 10e6
    assert (scraped.value("voxgate_asyncio_tasks") or 0) >= 1
    assert (scraped.value("voxgate_threads") or 0) >= 1
    assert scraped.value("process_cpu_seconds_total") is not None
    assert scraped.total("voxgate_gc_pause_seconds_count") > 0  # a server allocating at all collects gen 0


async def test_inference_executor_exports_queue_depth_and_wait() -> None:
    process_feeds.install()
    executor = InferenceExecutor("metrics-test", threads=1)
    release = threading.Event()
    try:
        first = asyncio.ensure_future(executor.run(release.wait, 10))
        second = asyncio.ensure_future(executor.run(lambda: 42))
        await asyncio.sleep(0)  # let both jobs be submitted
        depth = parse(generate_latest(REGISTRY).decode())
        assert depth.value("voxgate_inference_queue_depth", model="metrics-test") == 2
        release.set()
        assert await second == 42
        assert await first is True
        done = parse(generate_latest(REGISTRY).decode())
        assert done.value("voxgate_inference_queue_depth", model="metrics-test") == 0
        assert done.value("voxgate_inference_wait_seconds_count", model="metrics-test") == 2
    finally:
        release.set()
        executor.shutdown(wait=True)


async def test_latency_harness_pairs_client_turns_with_server_stages(server: LiveServer) -> None:
    pcm = to_int16(resample(tone(PHRASE_TONES["hello there"], 900), 16_000, 24_000))
    line = EncodedLine.of("hello there", pcm)
    turns, sessions, problems = await run_conversations(server.ws_url, server.api_key, [line], 1, 2, 0.2, 20)
    assert problems == []
    assert len(turns) == 2
    for turn in turns:
        assert turn.reply is not None and turn.reply.status == "completed"
        assert turn.transcript == "hello there"
        # "You said hello there." from the scripted LLM: 4 words of 100 ms from the tone TTS, all delivered
        assert turn.reply.audio_ms == pytest.approx(4 * MS_PER_WORD, abs=5)
    response = await get(server, "/metrics/turns", session_id=sessions[0])
    by_reply = {t["reply_id"]: t["stages_ms"] for t in response.json()["turns"]}
    for turn in turns:
        assert turn.reply is not None
        server_side = by_reply[turn.reply.reply_id]["speech_end_to_first_audio_sent"]
        client_side = turn.voice_to_voice_ms
        # one machine, one monotonic clock: the client's interval contains the server's
        assert client_side is not None and client_side >= server_side
