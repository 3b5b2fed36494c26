"""Wire events of the realtime WebSocket (PROTOCOL.md §4-§6), as pydantic models discriminated on ``type``.

Client events are parsed leniently: unknown extra fields are ignored (clients of later API versions send
more), but a missing required field is ``invalid_format`` and a field of the wrong type is
``invalid_value``, both with ``param`` naming the field (§11). Server events serialise to the exact wire
shape with :meth:`ServerEvent.to_json`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voxgate.protocol.errors import CLOSING_CODES, CloseCode, ErrorCode


class ProtocolError(Exception):
    """A client message (or part of one) violates the protocol, or the server failed at it; becomes one
    ``session.error``. ``close``: the close code that follows the error (default: the code's own, see
    :data:`~voxgate.protocol.errors.CLOSING_CODES`; None keeps the session open)."""

    def __init__(
        self, code: ErrorCode, message: str, param: str | None = None, *, close: CloseCode | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.close = close if close is not None else CLOSING_CODES.get(code)


# --- client -> server ---------------------------------------------------------------------------
class ClientEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SessionUpdate(ClientEvent):
    type: Literal["session.update"] = "session.update"
    session: dict[str, Any]


class SessionResume(ClientEvent):
    type: Literal["session.resume"] = "session.resume"
    session_id: str = Field(min_length=1, max_length=256)


class InputAudio(ClientEvent):
    type: Literal["input.audio"] = "input.audio"
    audio: str


class ToolResult(ClientEvent):
    type: Literal["tool.result"] = "tool.result"
    call_id: str = Field(min_length=1, max_length=256)
    result: str = ""
    is_error: bool = False

    @field_validator("result", mode="before")
    @classmethod
    def _serialise_non_string(cls, value: Any) -> Any:
        # PROTOCOL.md §5.4: non-string results are accepted and JSON-serialised.
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"))


class ReplyCreate(ClientEvent):
    type: Literal["reply.create"] = "reply.create"
    instructions: str | None = Field(None, max_length=100_000)


class ReplyCancel(ClientEvent):
    type: Literal["reply.cancel"] = "reply.cancel"
    reply_id: str | None = None


class SessionEnd(ClientEvent):
    type: Literal["session.end"] = "session.end"


class ConversationMessage(ClientEvent):
    type: Literal["conversation.message"] = "conversation.message"
    role: Literal["user", "system"] = "user"
    content: str = Field(max_length=100_000)


AnyClientEvent = (
    SessionUpdate
    | SessionResume
    | InputAudio
    | ToolResult
    | ReplyCreate
    | ReplyCancel
    | SessionEnd
    | ConversationMessage
)

CLIENT_EVENT_TYPES: dict[str, type[ClientEvent]] = {
    "session.update": SessionUpdate,
    "session.resume": SessionResume,
    "input.audio": InputAudio,
    "tool.result": ToolResult,
    "reply.create": ReplyCreate,
    "reply.cancel": ReplyCancel,
    "session.end": SessionEnd,
    "conversation.message": ConversationMessage,
}

_STRUCTURAL_ERRORS = frozenset(
    {"missing", "extra_forbidden", "model_type", "dict_type", "model_attributes_type"}
)


def protocol_error_from_validation(exc: ValidationError, *, prefix: str = "") -> ProtocolError:
    """Map the first pydantic error to ``invalid_format`` (structure) or ``invalid_value`` (a value)."""
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    param = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or None)
    kind = first["type"]
    if kind == "extra_forbidden":
        return ProtocolError(ErrorCode.INVALID_FORMAT, f"unknown field '{param}'", param)
    if kind == "missing":
        return ProtocolError(ErrorCode.INVALID_FORMAT, f"missing required field '{param}'", param)
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    code = ErrorCode.INVALID_FORMAT if kind in _STRUCTURAL_ERRORS and not prefix else ErrorCode.INVALID_VALUE
    return ProtocolError(code, f"{param}: {message}" if param else message, param)


def parse_client_event(raw: str | bytes) -> AnyClientEvent:
    """Parse one text frame. Raises :class:`ProtocolError` with the §11 code and ``param``."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(ErrorCode.INVALID_FORMAT, "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_FORMAT, "message must be a JSON object")
    kind = data.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.INVALID_FORMAT, "message has no 'type'", "type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_FORMAT, "'type' must be a string", "type")
    model = CLIENT_EVENT_TYPES.get(kind)
    if model is None:
        raise ProtocolError(ErrorCode.INVALID_FORMAT, f"unknown message type '{kind[:64]}'", "type")
    if kind == "session.update" and "session" in data and not isinstance(data["session"], dict):
        raise ProtocolError(ErrorCode.INVALID_FORMAT, "'session' must be an object", "session")
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise protocol_error_from_validation(exc) from None


# --- server -> client ---------------------------------------------------------------------------
class ServerEvent(BaseModel):
    """Every server event may carry ``timestamp``: seconds since the session started (HOSTED.md §4). The
    session stamps each event as it sends it (:meth:`stamped`); an event sent outside a session (a
    rejected connection) goes without."""

    model_config = ConfigDict(frozen=True)
    omit_when_none: ClassVar[frozenset[str]] = frozenset()
    timestamp: float | None = None

    def stamped(self, seconds_since_start: float) -> ServerEvent:
        """This event with ``timestamp`` (rounded to the millisecond), unless it has one already."""
        if self.timestamp is not None:
            return self
        return self.model_copy(update={"timestamp": round(seconds_since_start, 3)})

    def to_wire(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key in (*self.omit_when_none, "timestamp"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)


class SessionReady(ServerEvent):
    """``config`` is the effective configuration without secrets (``protocol.session_view``);
    ``expires_at`` the session's hard end (epoch seconds); ``resume_token`` the credential that resumes
    this session and no other (``store.resume_tokens``)."""

    type: Literal["session.ready"] = "session.ready"
    session_id: str
    resume_token: str
    expires_at: int
    config: dict[str, Any]


class SessionUpdated(ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    config: dict[str, Any]


class SessionErrorEvent(ServerEvent):
    type: Literal["session.error"] = "session.error"
    code: str
    message: str
    param: str | None = None
    session_id: str | None = None
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"param", "session_id"})


class SessionEnded(ServerEvent):
    type: Literal["session.ended"] = "session.ended"
    session_duration_seconds: float
    audio_duration_seconds: float
    """Seconds of input audio admitted; 0.0 when none (a number always: HOSTED.md's shape)."""


class InputSpeechStarted(ServerEvent):
    type: Literal["input.speech.started"] = "input.speech.started"


class InputSpeechStopped(ServerEvent):
    type: Literal["input.speech.stopped"] = "input.speech.stopped"


class TranscriptUserDelta(ServerEvent):
    type: Literal["transcript.user.delta"] = "transcript.user.delta"
    text: str
    item_id: str | None = None
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"item_id"})


class TranscriptUser(ServerEvent):
    type: Literal["transcript.user"] = "transcript.user"
    text: str
    item_id: str


class ReplyStarted(ServerEvent):
    type: Literal["reply.started"] = "reply.started"
    reply_id: str
    item_id: str


class ReplyAudio(ServerEvent):
    type: Literal["reply.audio"] = "reply.audio"
    data: str
    reply_id: str

    def to_json(self) -> str:  # hot path: one per ~50 ms of agent speech
        stamp = "" if self.timestamp is None else f',"timestamp":{self.timestamp!r}'
        return f'{{"type":"reply.audio","data":"{self.data}","reply_id":{json.dumps(self.reply_id)}{stamp}}}'


class TranscriptAgentDelta(ServerEvent):
    """The agent's words as they are played: ``delta`` appends to the previous ones (with its leading
    space); ``start_ms``/``end_ms`` place it in the reply's audio. The deltas of a reply concatenate to
    its ``transcript.agent`` text."""

    type: Literal["transcript.agent.delta"] = "transcript.agent.delta"
    item_id: str
    reply_id: str
    delta: str
    start_ms: int
    end_ms: int


class TranscriptAgent(ServerEvent):
    type: Literal["transcript.agent"] = "transcript.agent"
    text: str
    reply_id: str
    item_id: str
    interrupted: bool = False


ReplyStatus = Literal["completed", "interrupted"]
"""A failed or cancelled reply ends ``interrupted`` (HOSTED.md §4); a failure is a ``session.error``."""


class ReplyDone(ServerEvent):
    type: Literal["reply.done"] = "reply.done"
    status: ReplyStatus = "completed"
    reply_id: str


class ToolCall(ServerEvent):
    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: dict[str, Any]
    args: dict[str, Any]
    """The early docs' name for ``arguments``; sent too for old clients (PROTOCOL.md §6.12)."""


AnyServerEvent = (
    SessionReady
    | SessionUpdated
    | SessionErrorEvent
    | SessionEnded
    | InputSpeechStarted
    | InputSpeechStopped
    | TranscriptUserDelta
    | TranscriptUser
    | ReplyStarted
    | ReplyAudio
    | TranscriptAgent
    | TranscriptAgentDelta
    | ReplyDone
    | ToolCall
)


def session_error(code: ErrorCode, message: str, param: str | None = None) -> SessionErrorEvent:
    """The ``session.error`` event of ``code`` (lower case on the wire, as every code)."""
    return SessionErrorEvent(code=code.value, message=message, param=param)
