"""Bad input on the media WebSocket: logged and survived, never a crash; refused streams end the call."""

from __future__ import annotations

import asyncio

from tests.doubles import MS_PER_WORD
from tests.twilio.conftest import PCMU, Dial, PhoneServer, phrase_audio
from tests.twilio.twilio_peer import SimulatedTwilio


async def test_malformed_unknown_early_and_oversized_frames_are_survived(
    phone_server: PhoneServer, dial: Dial
) -> None:
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    url, parameters = phone_server.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    try:
        sid = peer.stream_sid
        # before start
        await peer.send(peer.media_message(b"\xff" * 160))
        await peer.send("not json at all")
        await peer.send({"event": "mystery", "streamSid": sid})
        await peer.send(b"\x00\x01\x02")
        await peer.start(parameters)
        junk: list[object] = [
            "{",
            "[]",
            '{"event": 5}',
            {"event": "media", "streamSid": sid},
            {"event": "media", "streamSid": sid, "media": {"payload": 7}},
            {"event": "media", "streamSid": sid, "media": {"payload": "A" * 20_000}},
            {"event": "media", "streamSid": sid, "media": {"payload": "!!!not base64!!!"}},
            {"event": "media", "streamSid": sid, "media": {"track": "outbound", "payload": "////"}},
            {"event": "mark", "streamSid": sid, "mark": {}},
            {"event": "mark", "streamSid": sid, "mark": {"name": "a-mark-never-sent"}},
            {"event": "dtmf", "streamSid": sid, "dtmf": {"digit": "x"}},
            {"event": "dtmf", "streamSid": sid, "dtmf": {"digit": ["1"]}},
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            peer.start_message(parameters),
            {"event": "stop", "streamSid": sid, "stop": "not an object"},
            "x" * 1_100_000,
            b"\xff" * 64,
        ]
        for frame in junk:
            await peer.send(frame)  # type: ignore[arg-type]
        await peer.say(phrase_audio("hello there"))
        await peer.wait_until(lambda: peer.played_ms >= 4 * MS_PER_WORD - 1)
        assert not peer.closed.is_set() and not peer.bad_outbound
    finally:
        await peer.close()
    log = phone_server.server.log_text()
    assert "ignored a frame" in log and "media before start" in log and "unknown event 'mystery'" in log
    assert "exceeds the limit" in log and "Traceback" not in log


async def test_start_without_credential_is_refused(phone_server: PhoneServer) -> None:
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    url, _ = phone_server.answer(agent_id)
    for parameters in ({"agent_id": agent_id}, {"agent_id": agent_id, "token": "vgt_forged"}, {}):
        peer = await SimulatedTwilio.dial(url)
        try:
            await peer.start(parameters, stream_audio=False)
            async with asyncio.timeout(10):
                await peer.closed.wait()
            assert peer.close_code == 1008 and not peer.outbound
        finally:
            await peer.close()


async def test_a_token_for_one_agent_cannot_reach_an_unknown_agent(phone_server: PhoneServer) -> None:
    agent_id = phone_server.create_agent(greeting="Hello.", input=PCMU, output=PCMU)
    url, parameters = phone_server.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start({**parameters, "agent_id": "agent_does_not_exist"}, stream_audio=False)
        async with asyncio.timeout(10):
            await peer.closed.wait()
        assert peer.close_code == 1008 and not peer.media_frames()
    finally:
        await peer.close()


async def test_a_stream_that_never_starts_is_closed(phone_server: PhoneServer) -> None:
    peer = await SimulatedTwilio.dial(
        f"ws://{phone_server.server.host}:{phone_server.server.port}/twilio/media"
    )
    try:
        await peer.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        async with asyncio.timeout(20):
            await peer.connection.wait_closed()
        assert peer.connection.close_code == 1008
    finally:
        await peer.close()


async def test_a_deeply_nested_frame_is_dropped_and_the_call_goes_on(
    phone_server: PhoneServer, dial: Dial
) -> None:
    """~2 KB nested ~1000 deep used to raise RecursionError in the parser and hang up the call."""
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    url, parameters = phone_server.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start(parameters)
        await peer.send('{"event": "media", "media": ' + "[" * 1000 + "]" * 1000 + "}")
        await peer.send("[" * 5000)
        await peer.say(phrase_audio("hello there"))
        await peer.wait_until(lambda: peer.played_ms >= 4 * MS_PER_WORD - 1)
        assert not peer.closed.is_set() and not peer.bad_outbound
    finally:
        await peer.close()
    log = phone_server.server.log_text()
    assert "nested deeper than 32 levels" in log and "Traceback" not in log
