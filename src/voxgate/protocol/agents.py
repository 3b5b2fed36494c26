"""Stored agents on REST (PROTOCOL.md §3, HOSTED.md §2): what create and update take, what reads return.

Request models validate; unknown keys at any level are accepted and stored (``ConfigModel``). The read
models describe the record for OpenAPI (the handlers return the stored document rendered by
``store.agent_documents``): every tool has an ``id``, header secrets read back as ``{name, last_set_at}``
and ``llm`` entries without ``api_key``. Read models allow extra keys too, since unknown fields are
returned as they were stored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from voxgate.protocol.config import (
    MAX_GREETING_CHARS,
    MAX_NAME_CHARS,
    MAX_PRE_CONNECT_REQUESTS,
    MAX_PROMPT_CHARS,
    MAX_TOOLS,
    InputConfig,
    LLMEndpoint,
    OutputConfig,
    PreConnectRequest,
    PreConnectReturn,
    ToolSpec,
    check_voice,
    unique_tool_names,
)
from voxgate.protocol.config_model import ConfigModel
from voxgate.protocol.tool_extensions import DtmfCollectedArgument, ResponseInstructions
from voxgate.protocol.transfer_targets import MAX_TRANSFER_TARGETS, TransferTarget

MAX_TELEPHONY_ID_CHARS = 128
READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at"})
"""Server-assigned top-level fields: ignored when sent, so a record read back can be sent again."""


class VoiceRef(ConfigModel):
    voice_id: str

    @field_validator("voice_id")
    @classmethod
    def _voice_known(cls, voice_id: str) -> str:
        return check_voice(voice_id)


def _voice_from_string(value: Any) -> Any:
    return {"voice_id": value} if isinstance(value, str) else value


# --- requests ---------------------------------------------------------------------------------------
class AgentFields(ConfigModel):
    """Fields shared by create and update; on update every one is optional."""

    greeting: str | None = Field(None, max_length=MAX_GREETING_CHARS)
    input: InputConfig | None = None
    output: OutputConfig | None = None
    tools: list[ToolSpec] | None = Field(None, max_length=MAX_TOOLS)
    llm: list[LLMEndpoint] | None = Field(None, max_length=1)
    pre_connect_requests: list[PreConnectRequest] | None = Field(None, max_length=MAX_PRE_CONNECT_REQUESTS)
    transfer_targets: list[TransferTarget] | None = Field(None, max_length=MAX_TRANSFER_TARGETS)
    caller_id: str | None = Field(None, max_length=MAX_TELEPHONY_ID_CHARS)
    outbound_trunk_id: str | None = Field(None, max_length=MAX_TELEPHONY_ID_CHARS)

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: list[ToolSpec] | None) -> list[ToolSpec] | None:
        return unique_tool_names(tools)

    @field_validator("voice", mode="before", check_fields=False)
    @classmethod
    def _voice_str(cls, voice: Any) -> Any:
        return _voice_from_string(voice)

    def unknown_fields(self) -> dict[str, Any]:
        """Top-level keys this server does not know (stored and returned as sent)."""
        return {k: v for k, v in (self.model_extra or {}).items() if k not in READ_ONLY_FIELDS}


class AgentCreate(AgentFields):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    system_prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    voice: VoiceRef


class AgentUpdate(AgentFields):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_CHARS)
    system_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    voice: VoiceRef | None = None


# --- reads (OpenAPI) --------------------------------------------------------------------------------
class HttpHeaderRecord(ConfigModel):
    """A header secret as read back: never its value."""

    name: str
    last_set_at: str | None = Field(description="When the value was last set (ISO-8601 UTC).")


class HttpSpecRecord(ConfigModel):
    url: str
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    headers: list[HttpHeaderRecord]


class ToolRecord(ConfigModel):
    type: Literal["function"] = "function"
    id: str = Field(description="Server-assigned (`tool_<hex>`), stable across updates that keep the name.")
    name: str
    description: str
    parameters: dict[str, Any]
    execution_mode: Literal["interactive", "hold"]
    timeout_seconds: float
    http: HttpSpecRecord | None = None
    response_instructions: ResponseInstructions | None = None
    dtmf_collected_arguments: list[DtmfCollectedArgument] = Field(default_factory=list)


class PreConnectRequestRecord(ConfigModel):
    http: HttpSpecRecord
    sends: list[str]
    returns: list[PreConnectReturn]
    timeout_ms: int | None = None
    allow_overrides: list[str]


class LLMEndpointRecord(ConfigModel):
    base_url: str
    model: str


class AgentRecord(ConfigModel):
    """An agent as returned by create, get, update and list: no secret values."""

    id: str
    name: str
    system_prompt: str
    voice: VoiceRef
    greeting: str | None = None
    input: InputConfig
    output: OutputConfig
    tools: list[ToolRecord]
    llm: list[LLMEndpointRecord]
    pre_connect_requests: list[PreConnectRequestRecord] = Field(default_factory=list)
    transfer_targets: list[TransferTarget] = Field(default_factory=list)
    caller_id: str | None = None
    outbound_trunk_id: str | None = None
    created_at: str
    updated_at: str
