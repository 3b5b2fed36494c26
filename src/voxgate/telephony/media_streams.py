"""Twilio Media Streams messages (TWILIO.md §2-§3): inbound JSON frames parsed into typed messages,
outbound frames built as JSON text.

Inbound messages are validated leniently (unknown fields are ignored, Twilio adds fields over time) but
every field the bridge relies on is checked; :func:`parse_inbound` raises :class:`StreamFrameError`
with a readable reason for anything else, and :class:`UnknownStreamEvent` for a well-formed message
whose ``event`` the bridge does not know.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxgate.protocol.frame_limits import nesting_refusal

MULAW_ENCODING = "audio/x-mulaw"
MULAW_SAMPLE_RATE = 8000
MULAW_BYTES_PER_MS = MULAW_SAMPLE_RATE // 1000
MAX_MEDIA_PAYLOAD_CHARS = 10_668
"""Largest accepted inbound ``media.payload``: base64 of 1 s of μ-law (Twilio sends 20 ms = 216 chars)."""
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class StreamFrameError(ValueError):
    """A frame that is not a valid Media Streams message."""


class UnknownStreamEvent(StreamFrameError):
    """A JSON message with an ``event`` the bridge does not handle."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class MediaFormat(_Message):
    encoding: str
    sample_rate: int = Field(alias="sampleRate")
    channels: int = 1


class StartDetails(_Message):
    stream_sid: str = Field(alias="streamSid", min_length=1, max_length=128)
    account_sid: str = Field("", alias="accountSid", max_length=128)
    call_sid: str = Field("", alias="callSid", max_length=128)
    tracks: list[str] = Field(default_factory=list)
    custom_parameters: dict[str, str] = Field(default_factory=dict, alias="customParameters")
    media_format: MediaFormat | None = Field(None, alias="mediaFormat")


class ConnectedMessage(_Message):
    event: Literal["connected"]
    protocol: str = ""
    version: str = ""


class StartMessage(_Message):
    event: Literal["start"]
    stream_sid: str = Field("", alias="streamSid")
    start: StartDetails


class MediaChunk(_Message):
    track: str = "inbound"
    chunk: str | None = None
    timestamp: str | None = None
    payload: str = Field(max_length=MAX_MEDIA_PAYLOAD_CHARS)


class MediaMessage(_Message):
    event: Literal["media"]
    stream_sid: str = Field("", alias="streamSid")
    media: MediaChunk


class MarkName(_Message):
    name: str = Field(min_length=1, max_length=256)


class MarkMessage(_Message):
    event: Literal["mark"]
    stream_sid: str = Field("", alias="streamSid")
    mark: MarkName


class DtmfKey(_Message):
    track: str = "inbound_track"
    digit: str


class DtmfMessage(_Message):
    event: Literal["dtmf"]
    stream_sid: str = Field("", alias="streamSid")
    dtmf: DtmfKey


class StopMessage(_Message):
    event: Literal["stop"]
    stream_sid: str = Field("", alias="streamSid")
    stop: dict[str, Any] = Field(default_factory=dict)


InboundMessage = ConnectedMessage | StartMessage | MediaMessage | MarkMessage | DtmfMessage | StopMessage

_INBOUND: TypeAdapter[InboundMessage] = TypeAdapter(
    Annotated[InboundMessage, Field(discriminator="event")]  # type: ignore[arg-type]
)
_KNOWN_EVENTS = frozenset({"connected", "start", "media", "mark", "dtmf", "stop"})


def parse_inbound(text: str) -> InboundMessage:
    """One text frame from Twilio as a typed message; raises :class:`StreamFrameError`."""
    if (refusal := nesting_refusal(text)) is not None:
        raise StreamFrameError(refusal)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise StreamFrameError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise StreamFrameError("not a JSON object")
    event = raw.get("event")
    if not isinstance(event, str):
        raise StreamFrameError("missing 'event'")
    if event not in _KNOWN_EVENTS:
        raise UnknownStreamEvent(f"unknown event {event[:64]!r}")
    try:
        message = _INBOUND.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"][1:])
        raise StreamFrameError(f"invalid {event} message: {where}: {first['msg']}") from None
    if isinstance(message, DtmfMessage) and message.dtmf.digit not in DTMF_DIGITS:
        raise StreamFrameError(f"invalid dtmf digit {message.dtmf.digit[:8]!r}")
    return message


def is_mulaw_8k_mono(media_format: MediaFormat | None) -> bool:
    """Whether the stream carries what Media Streams always carries: μ-law, 8 kHz, mono (absent: assumed)."""
    if media_format is None:
        return True
    return (
        media_format.encoding == MULAW_ENCODING
        and media_format.sample_rate == MULAW_SAMPLE_RATE
        and media_format.channels == 1
    )


# --- outbound ------------------------------------------------------------------------------------------
def media_frame(stream_sid: str, payload: str) -> str:
    """Play ``payload`` (base64 raw μ-law 8 kHz mono, no header) to the caller."""
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_frame(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo ``name`` once the audio queued before it has played (or was cleared)."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_frame(stream_sid: str) -> str:
    """Drop all audio Twilio has queued for playback (pending marks are echoed)."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})
