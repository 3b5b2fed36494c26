"""The limits of PROTOCOL.md §11/§12 on real server processes: input audio faster than real time
(``audio_rate_violation``, default burst allowance) and the per-process session cap (``at_capacity``,
``VOXGATE_MAX_SESSIONS``), on ``/v1/ws`` and on the Twilio media socket. Plus the input-rate budget
itself, driven with synthetic arrival times."""

from __future__ import annotations

import asyncio
import base64
import gc
import time
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx
import numpy as np
import pytest
from bench.metrics_scrape import parse

from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env, silence, utterance
from tests.realtime.protocol_client import ProtocolClient
from tests.twilio.conftest import PCMU, call_form, parse_stream_twiml
from tests.twilio.twilio_peer import SimulatedTwilio
from voxgate.audio.codecs import encode_audio
from voxgate.audio.resample import resample, to_int16
from voxgate.conversation.input_rate import VIOLATION_EPISODE_GAP_SECONDS, InputRateBudget
from voxgate.conversation.loop_stalls import LoopHeartbeat, StallCredit, loop_heartbeat

WIRE_RATE = 24_000
CHUNK_MS = 50
DEFAULT_BURST_SECONDS = 2.0
STALL_SECONDS = 3.5
"""How long the stalling server's event loop is blocked: 1.5 s more than the burst allowance."""


# --- servers and clients ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default input-rate limit (no VOXGATE_INPUT_RATE_BURST_SECONDS)."""
    with LiveServer(tmp_path_factory.mktemp("paced"), env=doubles_env()) as server:
        yield server


@pytest.fixture(scope="module")
def stalling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default input-rate limit, and an STT provider whose first final decode blocks the event loop
    for longer than the burst allowance."""
    env = doubles_env(
        VOXGATE_STT="tests.doubles:loop_blocking_stt", VOXGATE_TEST_BLOCK_LOOP_SECONDS=str(STALL_SECONDS)
    )
    with LiveServer(tmp_path_factory.mktemp("stalling"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def capacity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("capacity"), env=doubles_env(VOXGATE_MAX_SESSIONS="1")) as server:
        yield server


@pytest.fixture
async def clients() -> AsyncIterator[list[ProtocolClient]]:
    opened: list[ProtocolClient] = []
    yield opened
    for client in opened:
        await client.connection.close()


async def open_client(
    server: LiveServer, opened: list[ProtocolClient], headers: dict[str, str] | None = None
) -> ProtocolClient:
    client = await ProtocolClient.open(
        server.ws_url, headers=server.auth_headers() if headers is None else headers
    )
    opened.append(client)
    return client


async def ready(server: LiveServer, opened: list[ProtocolClient], **session: object) -> ProtocolClient:
    client = await open_client(server, opened)
    await client.update(**session)
    await client.wait_for("session.ready")
    return client


def wire_chunks(audio: np.ndarray) -> list[str]:
    """16 kHz float audio as base64 ``audio/pcm`` (24 kHz PCM16) payloads of CHUNK_MS each."""
    pcm = to_int16(resample(audio, 16_000, WIRE_RATE))
    step = WIRE_RATE * CHUNK_MS // 1000
    return [
        base64.b64encode(encode_audio("audio/pcm", pcm[i : i + step])).decode()
        for i in range(0, pcm.size, step)
    ]


async def stream_like_a_microphone(
    client: ProtocolClient, audio: np.ndarray, *, stall: tuple[float, float] | None = None
) -> None:
    """Send ``audio`` at real-time pace: chunk k goes out once its last sample has been captured, at
    start + (k + 1) * CHUNK_MS. With ``stall=(at, seconds)`` nothing is sent from ``at`` for ``seconds``
    (a network hiccup); the chunks captured meanwhile then go out at once (the catch-up). The waits here are
    the client's pacing under test, not waits for the server."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, payload in enumerate(wire_chunks(audio)):
        release = (index + 1) * CHUNK_MS / 1000
        if stall is not None and stall[0] <= release < stall[0] + stall[1]:
            release = stall[0] + stall[1]
        delay = start + release - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send({"type": "input.audio", "audio": payload})


def violations(client: ProtocolClient) -> list[dict[str, object]]:
    return [
        e for e in client.received if e["type"] == "session.error" and e["code"] == "audio_rate_violation"
    ]


async def at_capacity_count(server: LiveServer) -> float:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get("/metrics")
    return parse(response.text).value("voxgate_session_errors_total", code="at_capacity") or 0.0


# --- audio_rate_violation ---------------------------------------------------------------------------------
async def test_audio_pushed_at_once_is_dropped_with_one_error_and_the_session_goes_on(
    paced_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    client = await ready(paced_server, clients)
    await client.send_audio(silence(10_000))  # 10 s of audio in one go: 5x the allowance
    await client.update(system_prompt="Be brief.")  # handled after every one of those frames
    await client.wait_for("session.updated")
    (error,) = violations(client)
    assert "faster than real time" in str(error["message"]) and "param" not in error
    assert client.types().index("session.error") < client.types().index("session.updated")

    spoken = utterance("hello there")  # 2.3 s
    await stream_like_a_microphone(client, spoken)
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there"
    done = await client.wait_for("reply.done")
    assert done["status"] == "completed"
    assert len(violations(client)) == 1

    await client.send({"type": "session.end"})
    ended = await client.wait_for("session.ended")
    assert await client.wait_closed() == 1000
    # Only admitted audio is counted: the allowance (plus what the wall clock refilled while the burst was
    # read) and the utterance, not the dropped rest of the 10 s.
    assert ended["audio_duration_seconds"] < 10.0 + spoken.size / 16_000 - 3.0


async def test_a_real_time_client_never_trips_the_limit_even_after_a_hiccup(
    paced_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    client = await ready(paced_server, clients)
    audio = np.concatenate([silence(2_500), utterance("hello there"), silence(500)])
    # 1.5 s without sending, then the backlog at once: within the 2 s allowance.
    await stream_like_a_microphone(client, audio, stall=(0.5, 1.5))
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there"
    await client.wait_for("reply.done")
    await client.send({"type": "session.end"})
    ended = await client.wait_for("session.ended")
    assert violations(client) == []
    sent_seconds = sum(len(base64.b64decode(p)) for p in wire_chunks(audio)) / 2 / WIRE_RATE
    assert ended["audio_duration_seconds"] == pytest.approx(sent_seconds, abs=0.002)  # nothing dropped


async def test_audio_sent_in_real_time_while_the_server_loop_was_blocked_is_not_dropped(
    stalling_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    client = await ready(stalling_server, clients)
    # The first final decode blocks the server for 3.5 s while this client keeps talking in real time; the
    # frames it sent meanwhile are read in one burst when the loop runs again.
    audio = np.concatenate(
        [utterance("hello there"), silence(STALL_SECONDS * 1000), utterance("check my order"), silence(500)]
    )
    await stream_like_a_microphone(client, audio)
    first = await client.wait_for("transcript.user")
    second = await client.wait_for("transcript.user")
    assert (first["text"], second["text"]) == ("hello there", "check my order")
    await client.send({"type": "session.end"})
    ended = await client.wait_for("session.ended")
    assert violations(client) == []
    sent_seconds = sum(len(base64.b64decode(p)) for p in wire_chunks(audio)) / 2 / WIRE_RATE
    assert ended["audio_duration_seconds"] == pytest.approx(sent_seconds, abs=0.002)  # nothing dropped
    assert "the event loop stalled for 3." in stalling_server.log_text()  # the stall did happen


def test_the_budget_admits_the_burst_then_drops_and_announces_once_per_episode() -> None:
    budget = InputRateBudget(DEFAULT_BURST_SECONDS)
    flood = [budget.admit(0.05, 100.0) for _ in range(200)]  # 10 s arriving at one instant
    assert sum(a.admitted for a in flood) == 40  # 2 s
    assert [a.announce for a in flood].count(True) == 1 and flood[40].announce
    assert budget.dropped_seconds == pytest.approx(8.0)

    # Then exactly real time (each chunk once captured): nothing more is dropped.
    later = [budget.admit(0.05, 100.0 + (k + 1) * 0.05) for k in range(100)]
    assert all(a.admitted for a in later)

    # A second flood long after the last drop is a new episode, announced again.
    again = [budget.admit(0.05, 100.0 + 5.0 + VIOLATION_EPISODE_GAP_SECONDS) for _ in range(100)]
    assert [a.announce for a in again].count(True) == 1 and budget.episodes == 2


def test_the_budget_tolerates_big_chunks_and_catch_up_but_not_a_steady_overrun() -> None:
    big = InputRateBudget(DEFAULT_BURST_SECONDS)
    assert all(big.admit(3.0, 3.0 * (k + 1)).admitted for k in range(20))  # 3 s chunks every 3 s

    hiccup = InputRateBudget(DEFAULT_BURST_SECONDS)
    times = [(k + 1) * 0.05 for k in range(200)]
    stalled = [max(t, 3.9) if 2.0 <= t < 3.9 else t for t in times]  # 1.9 s stall, then the backlog
    assert all(hiccup.admit(0.05, t).admitted for t in stalled)

    fast = InputRateBudget(DEFAULT_BURST_SECONDS)
    decisions = [fast.admit(0.05, k * 0.05 / 1.25) for k in range(1_000)]  # 25 % faster for 50 s of audio
    dropped = sum(not a.admitted for a in decisions)
    assert dropped * 0.05 == pytest.approx(50 - 40 - DEFAULT_BURST_SECONDS, abs=0.2)
    assert fast.episodes == 1  # drops every few frames: one continuous episode, one error


def test_a_server_stall_is_forgiven_for_its_catch_up_only() -> None:
    budget = InputRateBudget(DEFAULT_BURST_SECONDS)
    assert all(budget.admit(0.05, (k + 1) * 0.05).admitted for k in range(40))  # 2 s in real time
    # The server read nothing for 3.5 s, then the 70 frames sent meanwhile at one instant.
    budget.forgive(3.5, now=5.5)
    assert all(budget.admit(0.05, 5.5).admitted for _ in range(70))
    assert budget.dropped_seconds == 0.0 and budget.forgiven_seconds == 3.5

    # Credit is not saved up: a stall with no audio to catch up lapses once its catch-up is over.
    idle = InputRateBudget(DEFAULT_BURST_SECONDS)
    idle.admit(0.05, 0.0)
    idle.forgive(10.0, now=1.0)
    flood = [idle.admit(0.05, 2.0) for _ in range(100)]  # 5 s at once, a second after the stall
    assert sum(a.admitted for a in flood) == 40  # only the burst allowance


async def test_stall_credit_measures_a_blocked_loop_once_per_reader() -> None:
    heartbeat = LoopHeartbeat(asyncio.get_running_loop())
    try:
        first, second = StallCredit(heartbeat), StallCredit(heartbeat)
        await asyncio.sleep(0)
        time.sleep(0.6)  # noqa: ASYNC251 - block this loop, as a misbehaving provider would
        now = time.monotonic()
        # Read before the heartbeat's late tick has run: the stall is measured from the last tick.
        credit = first.new_credit(now)
        assert 0.6 - heartbeat.period <= credit <= 0.6 + 0.1
        assert first.new_credit(now) == 0.0  # once
        ticked = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(heartbeat.period, ticked.set_result, None)
        await ticked  # the late tick has run by now and recorded the stall
        assert heartbeat.stalls == 1
        assert second.new_credit(time.monotonic()) == pytest.approx(heartbeat.last_stall.seconds)
        # The late tick measured a hair longer than the early read: only the difference is new.
        assert first.new_credit(time.monotonic()) == pytest.approx(heartbeat.last_stall.seconds - credit)
        assert StallCredit(heartbeat).new_credit(time.monotonic()) == 0.0  # a later reader owes nothing
    finally:
        heartbeat.close()


def test_the_heartbeat_registry_does_not_keep_a_finished_loop_alive() -> None:
    async def beat() -> None:
        heartbeat = loop_heartbeat()
        started = heartbeat.last_tick
        loop = asyncio.get_running_loop()
        after_first_tick = loop.create_future()
        loop.call_later(heartbeat.period, after_first_tick.set_result, None)  # due after the heartbeat's
        await after_first_tick
        assert heartbeat.last_tick > started  # it ticked and scheduled its next tick on this loop

    loop = asyncio.new_event_loop()
    loop.run_until_complete(beat())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None


# --- at_capacity ------------------------------------------------------------------------------------------
async def test_a_connection_beyond_max_sessions_gets_at_capacity_until_a_session_ends(
    capacity_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    rejected_before = await at_capacity_count(capacity_server)
    first = await ready(capacity_server, clients)

    second = await open_client(capacity_server, clients)
    error = await second.expect_error("at_capacity")  # at connect: before any message of the client
    assert "capacity" in error["message"]
    assert await second.wait_closed() == 1008

    anonymous = await open_client(capacity_server, clients, headers={})
    await anonymous.expect_error("unauthorized")  # authentication comes first
    assert await anonymous.wait_closed() == 1008

    assert await at_capacity_count(capacity_server) == rejected_before + 1

    await end(first)
    third = await ready(capacity_server, clients)  # the slot was given back when the session closed
    assert third.types() == ["session.ready"]
    await end(third)  # leave the slot free for the next test


async def end(client: ProtocolClient) -> None:
    """``session.end``: the server gives the slot back before it closes the socket."""
    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")
    assert await client.wait_closed() == 1000


def _phone_call(server: LiveServer, agent_id: str) -> tuple[str, dict[str, str]]:
    response = httpx.post(
        f"{server.base_url}/twilio/voice", params={"agent_id": agent_id}, data=call_form(), timeout=10
    )
    assert response.status_code == 200, response.text
    return parse_stream_twiml(response.text)


async def test_twilio_media_streams_share_the_session_cap(
    capacity_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    with capacity_server.client() as http:
        created = http.post(
            "/v1/agents",
            json={
                "name": "phone",
                "system_prompt": "You answer the phone.",
                "greeting": "Hello.",
                "voice": {"voice_id": "ivy"},
                "input": PCMU,
                "output": PCMU,
            },
        )
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]

    web = await ready(capacity_server, clients)
    url, parameters = _phone_call(capacity_server, agent_id)
    refused = await SimulatedTwilio.dial(url)
    try:
        await refused.start(parameters, stream_audio=False)
        async with asyncio.timeout(10):
            await refused.closed.wait()
        assert refused.close_code == 1008 and not refused.media_frames()
    finally:
        await refused.close()

    await end(web)
    url, parameters = _phone_call(capacity_server, agent_id)
    call = await SimulatedTwilio.dial(url)
    try:
        await call.start(parameters, stream_audio=False)
        await call.wait_until(lambda: bool(call.media_frames()))  # the greeting: the call was admitted
        late = await open_client(capacity_server, clients)
        await late.expect_error("at_capacity")
        assert await late.wait_closed() == 1008
    finally:
        await call.close()
