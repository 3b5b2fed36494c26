"""Strict models of the server events as HOSTED.md §4 shapes them: a test parses what the server sent with
these, so a missing field, a wrong type or an unexpected field (``extra="forbid"``) fails it.

The configuration inside ``session.ready``/``session.updated`` requires HOSTED's fields and forbids any
secret-bearing shape (header values, ``llm[].api_key``); other configuration fields are allowed, since the
configuration grows with the models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr

WireCode = Literal[
    "agent_id_not_first",
    "agent_not_found",
    "at_capacity",
    "audio_rate_violation",
    "concurrency_exceeded",
    "immutable_field",
    "internal_error",
    "invalid_audio",
    "invalid_config",
    "invalid_format",
    "invalid_value",
    "invalid_webhook",
    "session_expired",
    "session_forbidden",
    "session_not_found",
    "unauthorized",
]
Seconds = StrictFloat | StrictInt


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timestamp: Seconds | None = None


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeaderName(Closed):
    name: StrictStr
    last_set_at: StrictStr | None = None


class HttpView(Open):
    url: StrictStr
    http_method: StrictStr
    headers: list[HeaderName]


class ToolView(Open):
    type: Literal["function"]
    name: StrictStr
    description: StrictStr
    parameters: dict[str, Any]
    execution_mode: Literal["interactive", "hold"]
    timeout_seconds: Seconds
    response_instructions: Any
    http: HttpView | None = None


class LlmView(Closed):
    base_url: StrictStr
    model: StrictStr


class ConfigView(Open):
    id: StrictStr | None
    system_prompt: StrictStr
    greeting: StrictStr | None
    input: dict[str, Any]
    output: dict[str, Any]
    tools: list[ToolView]
    llm: list[LlmView]
    pre_connect_requests: list[Any]


class SessionReady(Event):
    type: Literal["session.ready"]
    session_id: StrictStr
    resume_token: StrictStr
    expires_at: StrictInt
    config: ConfigView


class SessionUpdated(Event):
    type: Literal["session.updated"]
    config: ConfigView


class SessionError(Event):
    type: Literal["session.error"]
    code: WireCode
    message: StrictStr
    param: StrictStr | None = None
    session_id: StrictStr | None = None


class SessionEnded(Event):
    type: Literal["session.ended"]
    session_duration_seconds: Seconds
    audio_duration_seconds: Seconds


class ReplyDone(Event):
    type: Literal["reply.done"]
    status: Literal["completed", "interrupted"]
    reply_id: StrictStr


class TranscriptAgentDelta(Event):
    type: Literal["transcript.agent.delta"]
    item_id: StrictStr
    reply_id: StrictStr
    delta: StrictStr
    start_ms: StrictInt
    end_ms: StrictInt


class TranscriptAgent(Event):
    type: Literal["transcript.agent"]
    text: StrictStr
    reply_id: StrictStr
    item_id: StrictStr
    interrupted: bool
