"""SIGTERM drain with phone calls (real server processes, speech doubles, the simulated Twilio peer).

A phone call cannot be resumed on another instance, so a draining instance lets it go on (turn after
turn, past the end of a reply, where a ``/v1/ws`` connection would be closed with 1012) until the caller
hangs up, and ends it through the bridge's hang-up path only at the drain deadline. New calls are refused
at the webhook (503); a stream answered before the drain still connects. The bridge's end of a call that
is still being configured waits for ``session.ready`` (``session.end`` is not allowed before it).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerFactory
from tests.doubles import LONG_STORY, MS_PER_WORD
from tests.live_server import LiveServer
from tests.twilio.conftest import PCMU, PhoneServer, call_form, phone_env, phrase_audio
from tests.twilio.twilio_peer import SimulatedTwilio
from voxgate.protocol.events import InputAudio, SessionEnd, SessionReady, SessionUpdate
from voxgate.telephony.bridge import MediaStreamBridge

CLEAN_EXIT = (0, -signal.SIGTERM)
"""uvicorn re-raises the signal it shut down for, so a clean stop may end "killed by SIGTERM"."""
STORY_MS = len(LONG_STORY.split()) * MS_PER_WORD
EXIT_AFTER_LAST_CALL_SECONDS = 8.0
"""The drain returns once the last call has ended; uvicorn then gives plain HTTP at most 5 s more."""


def phone_server(make: ServerFactory, tmp_path: Path, drain_seconds: float) -> PhoneServer:
    record = tmp_path / "llm-record.jsonl"
    return PhoneServer(make(env=phone_env(record, VOXGATE_DRAIN_SECONDS=str(drain_seconds))), record)


async def story_call(phone: PhoneServer) -> SimulatedTwilio:
    """A call whose agent is telling a long (about 6 s) story."""
    agent_id = phone.create_agent(input=PCMU, output=PCMU)
    url, parameters = phone.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    await peer.start(parameters)
    await peer.say(phrase_audio("tell me a long story"))
    await peer.wait_until(lambda: peer.received_ms >= 500)
    return peer


def sigterm(server: LiveServer) -> float:
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    return time.monotonic()


async def exit_code(server: LiveServer) -> int:
    assert server.process is not None
    return await asyncio.to_thread(server.process.wait, 30)


def call_lines(server: LiveServer, call_sid: str, pattern: str) -> list[str]:
    return re.findall(rf"call {re.escape(call_sid)}: {pattern}", server.log_text())


async def test_a_call_goes_on_through_the_drain_until_the_caller_hangs_up(
    live_server_factory: ServerFactory, tmp_path: Path
) -> None:
    phone = phone_server(live_server_factory, tmp_path, drain_seconds=20)
    server = phone.server
    greeter = phone.create_agent(greeting="Hello caller.", input=PCMU, output=PCMU)
    late_url, late_parameters = phone.answer(greeter)  # answered now; its stream connects during the drain
    peer = await story_call(phone)
    late: SimulatedTwilio | None = None
    try:
        signalled, at_signal = sigterm(server), peer.received_ms
        # The story keeps coming while the instance drains (a second of it: the drain has certainly begun).
        await peer.wait_until(lambda: peer.received_ms >= at_signal + 1000)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 503
            refused = await http.post("/twilio/voice", params={"agent_id": greeter}, data=call_form())
        assert refused.status_code == 503 and refused.json()["code"] == "unavailable", refused.text

        # A call answered before the drain still gets its stream, and its greeting.
        late = await SimulatedTwilio.dial(late_url)
        await late.start(late_parameters)
        await late.wait_until(lambda: late is not None and late.received_ms >= 2 * MS_PER_WORD - 1)
        await late.stop()
        async with asyncio.timeout(10):
            await late.closed.wait()
        assert late.close_code == 1000

        # The story is told to the end, and the call is not closed between replies: the next turn is
        # answered too.
        await peer.wait_until(lambda: peer.played_ms >= STORY_MS - 1)
        await peer.say(phrase_audio("hello there"))
        answer_ms = 4 * MS_PER_WORD  # "You said hello there."
        await peer.wait_until(lambda: peer.played_ms >= STORY_MS + answer_ms - 1)
        assert not peer.closed.is_set() and not peer.clears and not peer.bad_outbound

        await peer.stop()
        async with asyncio.timeout(10):
            await peer.closed.wait()
        assert peer.close_code == 1000
        hung_up = time.monotonic()
    finally:
        await peer.close()
        if late is not None:
            await late.close()

    # With no call left the drain is over: the server exits well before its 20 s.
    assert await exit_code(server) in CLEAN_EXIT
    assert time.monotonic() - hung_up < EXIT_AFTER_LAST_CALL_SECONDS
    assert hung_up - signalled < 15
    for call in (peer, late):
        assert len(call_lines(server, call.call_sid, r"session \S+ ended after")) == 1
        assert not call_lines(server, call.call_sid, "ending the call")


async def test_a_call_still_going_at_the_deadline_is_ended_cleanly(
    live_server_factory: ServerFactory, tmp_path: Path
) -> None:
    drain_seconds = 3.0  # the calls end at 2.25 s (a quarter is kept for closing), mid-story
    phone = phone_server(live_server_factory, tmp_path, drain_seconds=drain_seconds)
    server = phone.server
    peer = await story_call(phone)
    try:
        signalled, at_signal = sigterm(server), peer.received_ms
        async with asyncio.timeout(10):
            await peer.closed.wait()
        closed_after = time.monotonic() - signalled
    finally:
        await peer.close()

    # Agent audio kept coming until the deadline; then the server hung up normally (1000), mid-story.
    assert peer.close_code == 1000
    assert 2.0 <= closed_after <= drain_seconds, closed_after
    assert peer.received_ms >= at_signal + 1500, (at_signal, peer.received_ms)
    assert peer.received_ms < STORY_MS
    assert await exit_code(server) in CLEAN_EXIT
    assert time.monotonic() - signalled < drain_seconds + EXIT_AFTER_LAST_CALL_SECONDS
    # The bridge's hang-up path: session.end, so the session ended for good (checkpoint ended, then
    # session.ended) instead of being cancelled.
    assert call_lines(server, peer.call_sid, "ending the call: this instance is shutting down")
    assert len(call_lines(server, peer.call_sid, r"session \S+ ended after")) == 1
    assert not call_lines(server, peer.call_sid, "the session did not end in time")


class _SilentTransport:
    def __init__(self) -> None:
        self.closed: list[int] = []

    async def send_text(self, text: str) -> None:
        pass

    async def close(self, code: int) -> None:
        self.closed.append(code)


class _ScriptedSession:
    """Records what the bridge pushes; runs until it is told ``session.end``."""

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        self._ended = asyncio.Event()

    def push(self, item: Any) -> None:
        self.inputs.append(item)
        if isinstance(item, SessionEnd):
            self._ended.set()

    async def run(self) -> None:
        await self._ended.wait()


async def test_ending_a_call_before_session_ready_sends_session_end_once_it_is_ready() -> None:
    session = _ScriptedSession()

    async def open_session(token: str, sink: Any) -> Any:
        return session

    transport = _SilentTransport()
    bridge = MediaStreamBridge(transport, open_session, max_frame_chars=1 << 20)
    peer = SimulatedTwilio(connection=None)  # type: ignore[arg-type]  # only builds frames here
    await bridge.receive(json.dumps(peer.start_message({"agent_id": "agent_x", "token": "t"})))
    await bridge.receive(json.dumps(peer.media_message(b"\xff" * 160)))
    bridge.end_call()
    assert [type(item) for item in session.inputs] == [SessionUpdate]  # not allowed before ready
    await bridge.send(SessionReady(session_id="sess_x", resume_token="vgr_x", expires_at=0, config={}))
    assert [type(item) for item in session.inputs] == [SessionUpdate, SessionEnd]  # early audio dropped
    async with asyncio.timeout(5):
        await bridge.ended.wait()
    await bridge.finish()
    assert transport.closed == [1000]
    assert not any(isinstance(item, InputAudio) for item in session.inputs)
