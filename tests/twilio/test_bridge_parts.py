"""The bridge's parts on their own: Media Streams parsing, mark bookkeeping, keypad entries, the phone
configuration of an agent, and webhook URLs/signatures."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.twilio.test_webhook import twilio_signature
from voxgate.protocol.config import AudioFormat, InputConfig, OutputConfig, SessionConfig
from voxgate.telephony.keypad import KeypadEntry
from voxgate.telephony.media_streams import (
    MediaMessage,
    StartMessage,
    StreamFrameError,
    UnknownStreamEvent,
    clear_frame,
    is_mulaw_8k_mono,
    mark_frame,
    media_frame,
    parse_inbound,
)
from voxgate.telephony.phone_agent import phone_session_config
from voxgate.telephony.playback_marks import HeardPosition, PlaybackMarks
from voxgate.telephony.webhook import public_url, signature_is_valid, stream_url, voice_webhook_url


def test_parse_start_and_media_as_twilio_sends_them() -> None:
    start = parse_inbound(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": "MZ1",
                "start": {
                    "streamSid": "MZ1",
                    "accountSid": "AC1",
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "customParameters": {"agent_id": "agent_x", "token": "vgt_y"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "someFutureField": True,
                },
            }
        )
    )
    assert isinstance(start, StartMessage)
    assert start.start.custom_parameters == {"agent_id": "agent_x", "token": "vgt_y"}
    assert is_mulaw_8k_mono(start.start.media_format)
    media = parse_inbound(
        '{"event":"media","sequenceNumber":"3","streamSid":"MZ1",'
        '"media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8="}}'
    )
    assert isinstance(media, MediaMessage) and media.media.payload == "//8="


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("nope", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"x": 1}', "missing 'event'"),
        ('{"event": "media", "media": {}}', "media.payload"),
        ('{"event": "media", "media": {"payload": "' + "A" * 10_669 + '"}}', "media.payload"),
        ('{"event": "mark", "mark": {"name": ""}}', "mark.name"),
        ('{"event": "dtmf", "dtmf": {"digit": "12"}}', "invalid dtmf digit"),
        ('{"event": "start", "start": {"customParameters": {"a": 1}}}', "start"),
    ],
)
def test_bad_frames_are_errors_with_a_reason(frame: str, reason: str) -> None:
    with pytest.raises(StreamFrameError, match=reason):
        parse_inbound(frame)


def test_unknown_event_is_its_own_error() -> None:
    with pytest.raises(UnknownStreamEvent):
        parse_inbound('{"event": "transcription"}')


def test_outbound_frames_match_twilio_shapes() -> None:
    assert json.loads(media_frame("MZ1", "AAA=")) == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": "AAA="},
    }
    assert json.loads(mark_frame("MZ1", "m")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m"}}
    assert json.loads(clear_frame("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


def test_marks_track_positions_per_reply_and_echo_settles_older_marks() -> None:
    marks = PlaybackMarks()
    a1 = marks.after_audio("r1", 50)
    a2 = marks.after_audio("r1", 50)
    a3 = marks.after_audio("r1", 30)
    b1 = marks.after_audio("r2", 50)
    assert marks.echoed(a2) == HeardPosition("r1", 100)
    assert marks.echoed(a1) is None  # settled by the later echo
    assert marks.pending == 2
    assert marks.echoed(a3) == HeardPosition("r1", 130)
    assert marks.echoed(b1) == HeardPosition("r2", 50)
    assert marks.echoed("never-sent") is None


def test_marks_pending_at_a_clear_prove_nothing() -> None:
    marks = PlaybackMarks()
    first = marks.after_audio("r1", 50)
    second = marks.after_audio("r1", 50)
    assert marks.echoed(first) == HeardPosition("r1", 50)
    assert marks.cleared() == 1
    assert marks.echoed(second) is None
    assert marks.cleared() == 0


def test_marks_are_bounded_when_never_echoed() -> None:
    marks = PlaybackMarks(max_pending=3)
    names = [marks.after_audio("r1", 10) for _ in range(5)]
    assert marks.pending == 3
    assert marks.echoed(names[0]) is None
    assert marks.echoed(names[4]) == HeardPosition("r1", 50)


async def test_keypad_entry_ends_on_hash_or_after_a_pause() -> None:
    entries: list[str] = []
    delivered = asyncio.Event()

    def deliver(digits: str) -> None:
        entries.append(digits)
        delivered.set()

    keypad = KeypadEntry(deliver, pause_seconds=0.2, max_digits=4)
    for digit in "12#":
        keypad.press(digit)
    assert entries == ["12#"]
    delivered.clear()
    keypad.press("7")
    keypad.press("8")
    assert entries == ["12#"]
    async with asyncio.timeout(5):
        await delivered.wait()
    assert entries == ["12#", "78"]
    for digit in "12345":
        keypad.press(digit)
    assert entries[-1] == "1234"
    keypad.cancel()
    keypad.flush()
    assert entries[-1] == "1234"


def test_phone_config_forces_mulaw_and_keeps_the_rest() -> None:
    stored = SessionConfig(
        system_prompt="hi",
        greeting="Hello",
        input=InputConfig(keyterms=["Acme"]),
        output=OutputConfig(voice="james", volume=40),
    )
    phone = phone_session_config(stored)
    assert phone.input.format == AudioFormat(encoding="audio/pcmu")
    assert phone.output.format == AudioFormat(encoding="audio/pcmu")
    assert phone.input.keyterms == ["Acme"] and phone.output.voice == "james" and phone.output.volume == 40
    assert phone.greeting == "Hello" and phone.system_prompt == "hi"
    assert phone_session_config(phone) is phone


def test_webhook_urls() -> None:
    assert public_url("http://127.0.0.1:8000/twilio/voice?agent_id=a", None) == (
        "http://127.0.0.1:8000/twilio/voice?agent_id=a"
    )
    assert public_url("http://127.0.0.1:8000/twilio/voice?agent_id=a", "https://x.example/pre/") == (
        "https://x.example/pre/twilio/voice?agent_id=a"
    )
    assert stream_url("https://x.example/pre/") == "wss://x.example/pre/twilio/media"
    assert stream_url("http://127.0.0.1:8000/") == "ws://127.0.0.1:8000/twilio/media"
    assert (
        voice_webhook_url("https://x.example", "agent_1") == "https://x.example/twilio/voice?agent_id=agent_1"
    )


def test_signature_check_uses_url_and_every_form_field() -> None:
    form = {"CallSid": "CA1", "From": "+14155550100", "AccountSid": "AC1"}
    url = "https://x.example/twilio/voice?agent_id=a"
    good = twilio_signature("token", url, form)
    assert signature_is_valid("token", url, form, good)
    assert not signature_is_valid("token", url, {**form, "To": "+1"}, good)
    assert not signature_is_valid("token", url.replace("agent_id=a", "agent_id=b"), form, good)
    assert not signature_is_valid("other", url, form, good)
    assert not signature_is_valid("token", url, form, None)
