"""A simulated Twilio peer calls a real voxgate server (speech doubles): answers in μ-law, barge-in, marks,
hang-up, keypad, tools, forced μ-law."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from tests.doubles import LONG_STORY, MS_PER_WORD, TONE_AMPLITUDE, TTS_TONE_HZ, dominant_frequency
from tests.twilio.conftest import PCMU, Dial, PhoneServer, phrase_audio
from tests.twilio.recording_llm import read_records
from tests.twilio.twilio_peer import SAMPLE_RATE, SimulatedTwilio, float_from_mulaw
from voxgate.telephony.bridge import CLIENT_TOOL_UNAVAILABLE

CHUNK_BYTES = 400  # the engine's 50 ms reply chunks, in μ-law at 8 kHz


def agent_tone(peer: SimulatedTwilio) -> float | None:
    return dominant_frequency(float_from_mulaw(bytes(peer.agent_audio)), rate=SAMPLE_RATE)


async def test_greeting_and_answer_arrive_as_mulaw_media_with_marks(
    phone_server: PhoneServer, dial: Dial
) -> None:
    agent_id = phone_server.create_agent(greeting="Hello caller, how can I help?", input=PCMU, output=PCMU)
    peer = await dial(agent_id)

    greeting_ms = 6 * MS_PER_WORD
    await peer.wait_until(lambda: peer.played_ms >= greeting_ms - 1)
    await peer.say(phrase_audio("hello there"))
    answer_ms = 4 * MS_PER_WORD  # "You said hello there."
    await peer.wait_until(lambda: peer.played_ms >= greeting_ms + answer_ms - 1)

    frames = peer.media_frames()
    assert frames and all(len(frame) <= CHUNK_BYTES for frame in frames)
    assert sum(len(frame) == CHUNK_BYTES for frame in frames) >= len(frames) - 2
    assert abs(peer.received_ms - (greeting_ms + answer_ms)) <= 20
    frequency = agent_tone(peer)
    assert frequency is not None and abs(frequency - TTS_TONE_HZ) < 15
    # every media frame is followed by its mark; every mark was echoed because it was played
    events = [m["event"] for m in peer.outbound]
    assert events[:2] == ["media", "mark"] and events.count("media") == events.count("mark")
    assert all(record.outcome == "played" for record in peer.marks)
    assert not peer.clears and not peer.bad_outbound
    conversation = read_records(phone_server.record)[-1]
    assert conversation[-1] == {"role": "user", "content": "hello there"}


async def test_barge_in_clears_and_keeps_only_acknowledged_audio(
    phone_server: PhoneServer, dial: Dial
) -> None:
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    # Twilio starts playing 0.6 s after audio arrives: what was sent is well ahead of what was heard.
    peer = await dial(agent_id, playout_latency=0.6)
    await peer.say(phrase_audio("tell me a long story"))
    await peer.wait_until(lambda: peer.played_ms >= 1500)
    await peer.say(phrase_audio("wait stop I have another question", speech_ms=1400))
    await peer.wait_until(lambda: bool(peer.clears))

    clear = peer.clears[0]
    assert clear.received_ms - clear.played_ms >= 500
    cleared = [record for record in peer.marks if record.outcome == "cleared"]
    assert cleared, "a clear must discard audio still queued at Twilio"

    # The follow-up answer shows the story as the caller heard it in the LLM context.
    await peer.wait_until(
        lambda: _conversation_with(phone_server, "wait stop I have another question") is not None
    )
    conversation = _conversation_with(phone_server, "wait stop I have another question")
    assert conversation is not None
    story = next(m["content"] for m in conversation if m["role"] == "assistant")
    words = story.split()
    assert words == LONG_STORY.split()[: len(words)]
    heard_words = clear.played_ms / MS_PER_WORD
    assert heard_words - 1.5 <= len(words) <= heard_words + 1, (len(words), clear)
    # not the time-based estimate of what was sent (which runs 0.6 s, i.e. 6 words, ahead)
    assert len(words) * MS_PER_WORD <= clear.received_ms - 400
    assert not peer.bad_outbound


def _conversation_with(phone_server: PhoneServer, user_text: str) -> list[dict[str, str]] | None:
    for conversation in reversed(read_records(phone_server.record)):
        if conversation and conversation[-1] == {"role": "user", "content": user_text}:
            return conversation
    return None


async def test_stop_ends_the_call_and_the_credential_is_spent(phone_server: PhoneServer, dial: Dial) -> None:
    agent_id = phone_server.create_agent(greeting="Hi there.", input=PCMU, output=PCMU)
    url, parameters = phone_server.answer(agent_id)
    peer = await SimulatedTwilio.dial(url)
    try:
        await peer.start(parameters)
        await peer.wait_until(lambda: peer.played_ms >= 2 * MS_PER_WORD - 1)
        await peer.stop()
        async with asyncio.timeout(10):
            await peer.closed.wait()
        assert peer.close_code == 1000
    finally:
        await peer.close()

    # the same one-time credential cannot open a second stream
    again = await SimulatedTwilio.dial(url)
    try:
        await again.start(parameters)
        async with asyncio.timeout(10):
            await again.closed.wait()
        assert again.close_code == 1008
        assert not again.media_frames()
    finally:
        await again.close()


async def test_hang_up_without_stop_ends_the_session(phone_server: PhoneServer, dial: Dial) -> None:
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    peer = await dial(agent_id)
    await peer.say(phrase_audio("tell me a long story"))
    await peer.wait_until(lambda: peer.received_ms >= 500)
    await peer.hang_up_abruptly()
    # the server is fine and takes the next call
    follow_up = await dial(agent_id)
    await follow_up.say(phrase_audio("hello there"))
    await follow_up.wait_until(lambda: follow_up.played_ms >= 4 * MS_PER_WORD - 1)
    assert "Traceback" not in phone_server.server.log_text()


async def test_keypad_digits_reach_the_agent_as_user_text(phone_server: PhoneServer, dial: Dial) -> None:
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU)
    peer = await dial(agent_id)
    for digit in "4207#":
        await peer.press(digit)
    expected = "(The caller typed 4207# on the phone keypad.)"
    await peer.wait_until(lambda: _conversation_with(phone_server, expected) is not None)
    words = len(f"You said {expected}.".split())
    await peer.wait_until(lambda: peer.played_ms >= words * MS_PER_WORD - 1)


async def test_client_tool_is_answered_with_an_error_and_the_agent_recovers(
    phone_server: PhoneServer, dial: Dial
) -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {}},
    }
    agent_id = phone_server.create_agent(input=PCMU, output=PCMU, tools=[tool])
    peer = await dial(agent_id)
    await peer.say(phrase_audio("what is the weather in tokyo"))

    def tool_turn() -> list[dict[str, str]] | None:
        for conversation in read_records(phone_server.record):
            if conversation and conversation[-1]["role"] == "tool":
                return conversation
        return None

    await peer.wait_until(lambda: tool_turn() is not None)
    turn = tool_turn()
    assert turn is not None and json.loads(turn[-1]["content"]) == json.loads(CLIENT_TOOL_UNAVAILABLE)
    error = json.loads(CLIENT_TOOL_UNAVAILABLE)["error"]
    spoken = f"Let me check that for you. Sorry, I could not get that answer. {error}"
    await peer.wait_until(lambda: peer.played_ms >= len(spoken.split()) * MS_PER_WORD - 1)


async def test_agent_stored_with_pcm_is_forced_to_mulaw(phone_server: PhoneServer, dial: Dial) -> None:
    agent_id = phone_server.create_agent(greeting="Hello from a browser agent.")
    peer = await dial(agent_id)
    await peer.wait_until(lambda: peer.played_ms >= 5 * MS_PER_WORD - 1)
    frames = peer.media_frames()
    assert max(len(frame) for frame in frames) == CHUNK_BYTES  # PCM16 at 24 kHz would be 2,400 bytes
    frequency = agent_tone(peer)
    assert frequency is not None and abs(frequency - TTS_TONE_HZ) < 15
    samples = float_from_mulaw(bytes(peer.agent_audio))
    assert abs(float(np.max(np.abs(samples))) - TONE_AMPLITUDE * 0.5) < 0.01  # the double's level
