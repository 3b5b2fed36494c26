"""Session configuration and the parts agents share with it (PROTOCOL.md §3.2, §7; HOSTED.md §2).

One set of models serves both the REST agent API (protocol/agents.py) and ``session.update``. Unknown
keys are accepted at every level (``ConfigModel``): agents store and return them, ``session.update``
drops them with a log line. Invalid values of known fields are errors: on REST a 422 naming the field,
on the WebSocket ``invalid_value``/``invalid_config`` with ``param``.

Validation that depends on operator settings (hosts allowed for HTTP tools) reads the pydantic
validation context: ``Model.model_validate(data, context={"allowed_private_hosts": [...]})``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from voxgate.outbound.addresses import normalise_host, url_refusal
from voxgate.outbound.forbidden_headers import forbidden_header_refusal
from voxgate.protocol.config_model import ConfigModel
from voxgate.protocol.tool_extensions import MAX_DTMF_ARGUMENTS, DtmfCollectedArgument, ResponseInstructions
from voxgate.protocol.tool_parameters import tool_parameters_refusal
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
MAX_PRE_CONNECT_REQUESTS = 2
MAX_PRE_CONNECT_TIMEOUT_MS = 800

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
TOOL_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$"
SECRET_MASK = "***"

Encoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
PCM_SAMPLE_RATE = 24_000
G711_SAMPLE_RATE = 8_000


# --- audio ------------------------------------------------------------------------------------
class AudioFormat(ConfigModel):
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


SILENCE_FIELDS = ("min_silence", "max_silence")


class TurnDetection(ConfigModel):
    """Turn-taking. ``min_silence``/``max_silence`` that the client or agent sets are honoured: no turn
    ends before ``min_silence`` ms of silence. Left unset, the server's adaptive default applies (a turn
    that reads as finished ends after a short pause, otherwise 1000 ms, up to 3000 ms) and they are left
    out of the configuration the server reports."""

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

    @property
    def explicit_silences(self) -> frozenset[str]:
        """Which of ``min_silence``/``max_silence`` were set explicitly."""
        return frozenset(name for name in SILENCE_FIELDS if name in self.model_fields_set)

    @model_serializer(mode="wrap")
    def _without_default_silences(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in SILENCE_FIELDS:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The documented shape is the fields' (the serializer only leaves out unset silences)."""
        return handler(_without_model_serializer(core_schema))


def _without_model_serializer(schema: CoreSchema) -> CoreSchema:
    """``schema`` (a model's, possibly wrapped by its validators) without the model's own serializer."""
    copied: dict[str, Any] = dict(schema)
    if copied.get("type") == "model":
        copied.pop("serialization", None)
    elif isinstance(copied.get("schema"), dict):
        copied["schema"] = _without_model_serializer(copied["schema"])
    return cast(CoreSchema, copied)


Keyterm = Annotated[str, Field(min_length=1, max_length=MAX_KEYTERM_CHARS)]


MediaType = Literal["audio", "text"]
"""``"text"`` (HOSTED.md §5) is accepted and stored; sessions do not run text-only yet."""


class InputConfig(ConfigModel):
    """Later extensions (``transcription_mode``, ``language_codes``, ... PROTOCOL.md §7.1) are unknown keys:
    stored on agents, dropped from ``session.update``."""

    type: MediaType = "audio"
    format: AudioFormat = Field(default_factory=AudioFormat)
    keyterms: list[Keyterm] = Field(default_factory=list, max_length=MAX_KEYTERMS)
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)


def check_voice(voice_id: str) -> str:
    if voice_id in REMOVED_VOICES:
        raise ValueError(f"voice '{voice_id}' was removed from the catalogue")
    if not is_known_voice(voice_id):
        raise ValueError(f"unknown voice '{voice_id}'")
    return voice_id


class OutputConfig(ConfigModel):
    type: MediaType = "audio"
    voice: str = DEFAULT_VOICE
    format: AudioFormat = Field(default_factory=AudioFormat)
    volume: float = Field(100, ge=0, le=100)

    @field_validator("voice")
    @classmethod
    def _voice_known(cls, voice: str) -> str:
        return check_voice(voice)


# --- tools ----------------------------------------------------------------------------------------
class HttpHeader(ConfigModel):
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
    return url_refusal(url, frozenset(normalise_host(host) for host in allowed if host.strip()))


class HttpSpec(ConfigModel):
    url: str = Field(max_length=2048)
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("POST", alias="http_method")
    headers: list[HttpHeader] = Field(default_factory=list, max_length=MAX_HEADERS)
    accepted_aliases: ClassVar[dict[str, str]] = {"method": "http_method"}

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


class ToolSpec(ConfigModel):
    type: Literal["function"] = "function"
    id: str | None = Field(None, pattern=TOOL_ID_PATTERN)
    """Server-assigned on agents (``tool_...``, stable while the name is kept); a client may send one."""
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field("", max_length=MAX_TOOL_DESCRIPTION_CHARS)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []}
    )
    execution_mode: Literal["interactive", "hold"] = "interactive"
    timeout_seconds: float = Field(120, ge=1, le=300)
    http: HttpSpec | None = None
    response_instructions: ResponseInstructions | None = None
    dtmf_collected_arguments: list[DtmfCollectedArgument] = Field(
        default_factory=list, max_length=MAX_DTMF_ARGUMENTS
    )

    @field_validator("parameters")
    @classmethod
    def _parameters_schema(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        if (refusal := tool_parameters_refusal(parameters)) is not None:
            raise ValueError(f"parameters {refusal}")
        return parameters


def unique_tool_names(tools: list[ToolSpec] | None) -> list[ToolSpec] | None:
    if tools is not None:
        names: set[str] = set()
        ids: set[str] = set()
        for tool in tools:
            if tool.name in names:
                raise ValueError(f"duplicate tool name '{tool.name}'")
            if tool.id is not None and tool.id in ids:
                raise ValueError(f"duplicate tool id '{tool.id}'")
            names.add(tool.name)
            if tool.id is not None:
                ids.add(tool.id)
    return tools


class PreConnectReturn(ConfigModel):
    """A value taken from the pre-connect answer: ``path`` into its JSON, filling ``{{name}}``."""

    name: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1, max_length=256)
    default: Any = None


class PreConnectRequest(ConfigModel):
    """An HTTP request made before the session becomes ready (HOSTED.md §2). Its ``http`` follows the
    rules of an HTTP tool's (URL checks, write-only header secrets)."""

    http: HttpSpec
    sends: list[str] = Field(default_factory=list, max_length=32)
    returns: list[PreConnectReturn] = Field(default_factory=list, max_length=32)
    timeout_ms: int | None = Field(None, ge=1, le=MAX_PRE_CONNECT_TIMEOUT_MS)
    allow_overrides: list[str] = Field(default_factory=list, max_length=32)


class LLMEndpoint(ConfigModel):
    base_url: str = Field(max_length=2048)
    model: str = Field(min_length=1, max_length=256)
    api_key: str | None = Field(None, max_length=4096)

    @field_validator("base_url")
    @classmethod
    def _outbound_allowed(cls, url: str, info: ValidationInfo) -> str:
        if (refusal := _outbound_url_refusal(url, info)) is not None:
            raise ValueError(f"base_url {refusal}")
        return url


# --- session.update ------------------------------------------------------------------------------
SESSION_IMMUTABLE_FIELDS = ("greeting", "output.voice", "output.format", "output.type")


class SessionConfigPatch(ConfigModel):
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
        return unique_tool_names(tools)


SESSION_PATCH_SHAPES: dict[str, type[ConfigModel]] = {"input": InputConfig, "output": OutputConfig}
"""The models of the patch's plain-dict fields, for dropping their unknown keys (protocol.unknown_fields)."""


class SessionConfig(ConfigModel):
    """The effective configuration of a live session."""

    agent_id: str | None = None
    system_prompt: str = ""
    greeting: str | None = None
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tools: list[ToolSpec] = Field(default_factory=list)
    llm: list[LLMEndpoint] = Field(default_factory=list)
    """Only from a stored agent (BYO LLM); never settable inline."""
    pre_connect_requests: list[PreConnectRequest] = Field(default_factory=list)
    """Only from a stored agent; not run yet."""
