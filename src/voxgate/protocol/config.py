"""Agent and session configuration (PROTOCOL.md §3.1-§3.4 and §7).

One set of models serves both the REST agent API and ``session.update``. Unknown keys are rejected
everywhere (``extra="forbid"``): on REST as 422 naming the field, on the WebSocket as ``invalid_format``
with ``param``. The documented later extensions are declared explicitly so they are accepted.

Validation that depends on operator settings (hosts allowed for HTTP tools) reads the pydantic
validation context: ``Model.model_validate(data, context={"allowed_private_hosts": [...]})``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from voxgate.outbound.forbidden_headers import forbidden_header_refusal
from voxgate.outbound.policy import OutboundPolicy
from voxgate.protocol.voices import DEFAULT_VOICE, REMOVED_VOICES, is_known_voice

# Limits the spec leaves open (PROTOCOL.md §12); documented in docs/protocol-choices.md.
MAX_NAME_CHARS = 256
MAX_PROMPT_CHARS = 100_000
MAX_GREETING_CHARS = 2_000
MAX_TOOLS = 64
MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 100
MAX_TOOL_DESCRIPTION_CHARS = 4_000
MAX_HEADERS = 32
MAX_HEADER_VALUE_CHARS = 8_192

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$"
SECRET_MASK = "***"

Encoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
PCM_SAMPLE_RATE = 24_000
G711_SAMPLE_RATE = 8_000


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- audio ------------------------------------------------------------------------------------
class AudioFormat(StrictModel):
    encoding: Encoding = "audio/pcm"
    sample_rate: int | None = None

    @model_validator(mode="after")
    def _rate_fits_encoding(self) -> AudioFormat:
        if self.encoding == "audio/pcm":
            if self.sample_rate is None:
                self.sample_rate = PCM_SAMPLE_RATE
            elif self.sample_rate != PCM_SAMPLE_RATE:
                raise ValueError("sample_rate must be 24000 for audio/pcm")
        elif self.sample_rate not in (None, G711_SAMPLE_RATE):
            raise ValueError(f"sample_rate is fixed at 8000 for {self.encoding}")
        return self

    @property
    def rate(self) -> int:
        return PCM_SAMPLE_RATE if self.encoding == "audio/pcm" else G711_SAMPLE_RATE


class TurnDetection(StrictModel):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    vad_threshold: float = Field(0.5, ge=0.0, le=1.0)
    min_silence: int = Field(1000, ge=0, le=60_000)
    max_silence: int = Field(3000, ge=0, le=60_000)
    interrupt_response: bool = True
    interruption_delay: int | None = Field(None, ge=0, le=10_000)
    uninterruptible_turns: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _silences_ordered(self) -> TurnDetection:
        if self.min_silence > self.max_silence:
            raise ValueError("min_silence must not exceed max_silence")
        return self


Keyterm = Annotated[str, Field(min_length=1, max_length=MAX_KEYTERM_CHARS)]


class InputConfig(StrictModel):
    type: Literal["audio"] = "audio"
    format: AudioFormat = Field(default_factory=AudioFormat)
    keyterms: list[Keyterm] = Field(default_factory=list, max_length=MAX_KEYTERMS)
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    # Later extensions (PROTOCOL.md §7.1): accepted and ignored.
    transcription_mode: Any = None
    transcription_prompt: Any = None
    language_codes: Any = None
    continuous_partials: Any = None
    voice_focus: Any = None
    voice_focus_threshold: Any = None


def _check_voice(voice_id: str) -> str:
    if voice_id in REMOVED_VOICES:
        raise ValueError(f"voice '{voice_id}' was removed from the catalogue")
    if not is_known_voice(voice_id):
        raise ValueError(f"unknown voice '{voice_id}'")
    return voice_id


class OutputConfig(StrictModel):
    type: Literal["audio"] = "audio"
    voice: str = DEFAULT_VOICE
    format: AudioFormat = Field(default_factory=AudioFormat)
    volume: float = Field(100, ge=0, le=100)

    @field_validator("voice")
    @classmethod
    def _voice_known(cls, voice: str) -> str:
        return _check_voice(voice)


# --- tools ----------------------------------------------------------------------------------------
class HttpHeader(StrictModel):
    name: str = Field(pattern=HEADER_NAME_PATTERN)
    value: str | None = Field(None, max_length=MAX_HEADER_VALUE_CHARS)
    remove: bool = False
    last_set_at: str | None = None
    """Read-only; ignored on input so that a record read back can be sent again."""

    @field_validator("name")
    @classmethod
    def _not_a_transport_header(cls, name: str) -> str:
        if (refusal := forbidden_header_refusal(name)) is not None:
            raise ValueError(refusal)
        return name


def _outbound_url_refusal(url: str, info: ValidationInfo) -> str | None:
    """The shared outbound-URL rules (voxgate.outbound.policy), without DNS."""
    allowed = (info.context or {}).get("allowed_private_hosts") or ()
    return OutboundPolicy.allowing(allowed).url_refusal(url)


class HttpSpec(StrictModel):
    url: str = Field(max_length=2048)
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("POST", alias="http_method")
    headers: list[HttpHeader] = Field(default_factory=list, max_length=MAX_HEADERS)

    @model_validator(mode="before")
    @classmethod
    def _method_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "method" in data:
            data = dict(data)
            method = data.pop("method")
            data.setdefault("http_method", method.upper() if isinstance(method, str) else method)
        return data

    @field_validator("url")
    @classmethod
    def _url_allowed(cls, url: str, info: ValidationInfo) -> str:
        if (refusal := _outbound_url_refusal(url, info)) is not None:
            raise ValueError(f"url {refusal}")
        return url


class ToolSpec(StrictModel):
    type: Literal["function"] = "function"
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field("", max_length=MAX_TOOL_DESCRIPTION_CHARS)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []}
    )
    execution_mode: Literal["interactive", "hold"] = "interactive"
    timeout_seconds: float = Field(120, ge=1, le=300)
    http: HttpSpec | None = None


def _unique_tool_names(tools: list[ToolSpec] | None) -> list[ToolSpec] | None:
    if tools is not None:
        seen: set[str] = set()
        for tool in tools:
            if tool.name in seen:
                raise ValueError(f"duplicate tool name '{tool.name}'")
            seen.add(tool.name)
    return tools


class LLMEndpoint(StrictModel):
    base_url: str = Field(max_length=2048)
    model: str = Field(min_length=1, max_length=256)
    api_key: str | None = Field(None, max_length=4096)

    @field_validator("base_url")
    @classmethod
    def _outbound_allowed(cls, url: str, info: ValidationInfo) -> str:
        if (refusal := _outbound_url_refusal(url, info)) is not None:
            raise ValueError(f"base_url {refusal}")
        return url


# --- agents (REST) ------------------------------------------------------------------------------
class VoiceRef(StrictModel):
    voice_id: str

    @field_validator("voice_id")
    @classmethod
    def _voice_known(cls, voice_id: str) -> str:
        return _check_voice(voice_id)


def _voice_from_string(value: Any) -> Any:
    return {"voice_id": value} if isinstance(value, str) else value


class AgentFields(StrictModel):
    """Fields shared by create and update; on update every one is optional."""

    greeting: str | None = Field(None, max_length=MAX_GREETING_CHARS)
    input: InputConfig | None = None
    output: OutputConfig | None = None
    tools: list[ToolSpec] | None = Field(None, max_length=MAX_TOOLS)
    llm: list[LLMEndpoint] | None = Field(None, max_length=1)

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: list[ToolSpec] | None) -> list[ToolSpec] | None:
        return _unique_tool_names(tools)

    @field_validator("voice", mode="before", check_fields=False)
    @classmethod
    def _voice_str(cls, voice: Any) -> Any:
        return _voice_from_string(voice)


class AgentCreate(AgentFields):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    system_prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    voice: VoiceRef


class AgentUpdate(AgentFields):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_CHARS)
    system_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    voice: VoiceRef | None = None


class LLMEndpointOut(BaseModel):
    base_url: str
    model: str


class AgentRecord(BaseModel):
    """An agent as returned by the API: header values masked, ``llm[].api_key`` omitted."""

    id: str
    name: str
    system_prompt: str
    voice: VoiceRef
    greeting: str | None = None
    input: InputConfig
    output: OutputConfig
    tools: list[ToolSpec]
    llm: list[LLMEndpointOut]
    created_at: str
    updated_at: str


class AgentListItem(BaseModel):
    id: str
    name: str
    created_at: str
    updated_at: str


# --- session.update ------------------------------------------------------------------------------
SESSION_IMMUTABLE_FIELDS = ("greeting", "output.voice", "output.format", "output.type")


class SessionConfigPatch(StrictModel):
    """The ``session`` object of a ``session.update``: every field optional, merged into the session."""

    agent_id: str | None = Field(None, max_length=128)
    system_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    greeting: str | None = Field(None, max_length=MAX_GREETING_CHARS)
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    tools: list[ToolSpec] | None = Field(None, max_length=MAX_TOOLS)
    llm: Any = None

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: list[ToolSpec] | None) -> list[ToolSpec] | None:
        return _unique_tool_names(tools)


class SessionConfig(StrictModel):
    """The effective configuration of a live session."""

    agent_id: str | None = None
    system_prompt: str = ""
    greeting: str | None = None
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tools: list[ToolSpec] = Field(default_factory=list)
    llm: list[LLMEndpoint] = Field(default_factory=list)
    """Only from a stored agent (BYO LLM); never settable inline."""
