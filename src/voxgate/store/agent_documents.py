"""The stored form of an agent and its two views.

An agent is stored as one JSON document (``agents.document``) holding every field of HOSTED.md §2 plus
any unknown field the client sent, at any level (stored and returned as sent). Write-only secrets inside
it are encrypted with the ``SecretBox``: header values of HTTP tools and pre-connect requests (see
``store.header_secrets``) and BYO-LLM keys as ``api_key_enc``. From the document we render

- the public record (``AgentRecord`` shape): headers as ``{name, last_set_at}``, ``api_key`` omitted;
- the server-side ``SessionConfig`` with secrets decrypted and unknown fields dropped (engine only).

The update rules of PROTOCOL.md §3.3 (partial update, ``tools`` replaces the list, per-header
set / keep / remove, ``llm: []`` clears) live here too. Every tool has an ``id``: the client's, else the
id of the stored tool with the same name, else a new ``tool_<24 hex>``. Tools stored before ids
existed get one derived from the agent id and the tool name, so it is the same on every read.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from voxgate.protocol.agents import AgentCreate, AgentFields, AgentUpdate
from voxgate.protocol.config import (
    SECRET_MASK,
    InputConfig,
    LLMEndpoint,
    OutputConfig,
    PreConnectRequest,
    SessionConfig,
    ToolSpec,
)
from voxgate.protocol.unknown_fields import drop_unknown_fields
from voxgate.store.document_errors import AgentDocumentError
from voxgate.store.header_secrets import decrypted_http, public_http, store_http
from voxgate.store.secret_box import SecretBox
from voxgate.store.timestamps import format_timestamp

Document = dict[str, Any]
TOOL_ID_PREFIX = "tool_"
LIST_FIELDS = ("tools", "llm", "pre_connect_requests", "transfer_targets")
"""List fields a legacy document may lack; a missing one reads as ``[]``."""
RECORD_ORDER = (
    "name", "system_prompt", "voice", "greeting", "input", "output", "tools", "llm",
    "pre_connect_requests", "transfer_targets", "caller_id", "outbound_trunk_id",
)  # fmt: skip


def build_document(agent_id: str, create: AgentCreate, box: SecretBox, now: datetime) -> Document:
    """The stored document for a newly created agent."""
    voice_id = create.voice.voice_id
    document: Document = {
        **create.unknown_fields(),
        "name": create.name,
        "system_prompt": create.system_prompt,
        "voice": create.voice.model_dump(mode="json"),
        "greeting": create.greeting,
        "input": _dump_input(create.input or InputConfig()),
        "output": _dump_output(create.output or OutputConfig(voice=voice_id), voice_id),
        "tools": _store_tools(agent_id, create.tools or [], [], box, now),
        "llm": _store_llm(create.llm or [], [], box),
        "pre_connect_requests": _store_pre_connect(create.pre_connect_requests or [], [], box, now),
    }
    _set_telephony_fields(document, create, set(create.model_fields_set))
    return document


def apply_update(
    agent_id: str, document: Document, update: AgentUpdate, box: SecretBox, now: datetime
) -> Document:
    """A new document: ``document`` with the fields present in ``update`` applied (§3.3)."""
    given = update.model_fields_set
    result = {**document, **update.unknown_fields()}
    for required in ("name", "system_prompt", "voice"):
        if required in given and getattr(update, required) is None:
            raise AgentDocumentError((required,), f"{required} may not be null", "missing")
    if update.name is not None:
        result["name"] = update.name
    if update.system_prompt is not None:
        result["system_prompt"] = update.system_prompt
    if update.voice is not None:
        result["voice"] = update.voice.model_dump(mode="json")
    if "greeting" in given:
        result["greeting"] = update.greeting
    if "input" in given:
        result["input"] = _dump_input(update.input or InputConfig())
    voice_id = result["voice"]["voice_id"]
    if "output" in given:
        result["output"] = _dump_output(update.output or OutputConfig(voice=voice_id), voice_id)
    else:
        result["output"] = {**result["output"], "voice": voice_id}
    if "tools" in given:
        stored_tools = _tools_with_ids(agent_id, document.get("tools", []))
        result["tools"] = _store_tools(agent_id, update.tools or [], stored_tools, box, now)
    if "llm" in given:
        result["llm"] = _store_llm(update.llm or [], document.get("llm", []), box)
    if "pre_connect_requests" in given:
        result["pre_connect_requests"] = _store_pre_connect(
            update.pre_connect_requests or [], document.get("pre_connect_requests", []), box, now
        )
    _set_telephony_fields(result, update, given)
    return result


def render_record(
    agent_id: str, document: Document, created_at: datetime, updated_at: datetime
) -> dict[str, Any]:
    """The agent as the API returns it (AgentRecord shape): no secret values, unknown fields as stored."""
    public: dict[str, Any] = {field: document.get(field) for field in RECORD_ORDER}
    for field in LIST_FIELDS:
        public[field] = public[field] or []
    public["tools"] = [_public_tool(tool) for tool in _tools_with_ids(agent_id, public["tools"])]
    public["llm"] = [{k: v for k, v in entry.items() if k != "api_key_enc"} for entry in public["llm"]]
    public["pre_connect_requests"] = [
        {**request, "http": public_http(request["http"])} for request in public["pre_connect_requests"]
    ]
    unknown = {k: v for k, v in document.items() if k not in public}
    return {
        "id": agent_id,
        **public,
        **unknown,
        "created_at": format_timestamp(created_at),
        "updated_at": format_timestamp(updated_at),
    }


def render_session_config(agent_id: str, document: Document, box: SecretBox) -> SessionConfig:
    """The agent as a live session uses it: header values and llm api_key decrypted, unknown fields
    dropped. Server-side only."""
    hosts: set[str] = set()
    tools: list[dict[str, Any]] = []
    for stored in _tools_with_ids(agent_id, document.get("tools", [])):
        tool = dict(stored)
        if stored.get("http") is not None:
            hosts.add(_host(stored["http"]["url"]))
            tool["http"] = decrypted_http(stored["http"], box)
        tools.append(tool)
    pre_connect: list[dict[str, Any]] = []
    for stored in document.get("pre_connect_requests", []):
        hosts.add(_host(stored["http"]["url"]))
        pre_connect.append({**stored, "http": decrypted_http(stored["http"], box)})
    llm: list[dict[str, Any]] = []
    for entry in document.get("llm", []):
        hosts.add(_host(entry["base_url"]))
        key = entry.get("api_key_enc")
        llm.append(
            {
                "base_url": entry["base_url"],
                "model": entry["model"],
                "api_key": box.decrypt(key) if key else None,
            }
        )
    data = copy.deepcopy(
        {
            "agent_id": agent_id,
            "system_prompt": document["system_prompt"],
            "greeting": document.get("greeting"),
            "input": document["input"],
            "output": document["output"],
            "tools": tools,
            "llm": llm,
            "pre_connect_requests": pre_connect,
        }
    )
    drop_unknown_fields(data, SessionConfig)
    # The stored URLs were checked against the operator's host rules when they were written.
    return SessionConfig.model_validate(data, context={"allowed_private_hosts": sorted(hosts)})


# --- writing --------------------------------------------------------------------------------------
def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _dump_input(config: InputConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude_none=True)


def _dump_output(config: OutputConfig, voice_id: str) -> dict[str, Any]:
    # voice.voice_id is authoritative; output.voice mirrors it (PROTOCOL.md §3.1).
    return {**config.model_dump(mode="json", exclude_none=True), "voice": voice_id}


def _set_telephony_fields(document: Document, fields: AgentFields, given: set[str]) -> None:
    if "transfer_targets" in given:
        document["transfer_targets"] = [t.model_dump(mode="json") for t in fields.transfer_targets or []]
    for name in ("caller_id", "outbound_trunk_id"):
        if name in given:
            document[name] = getattr(fields, name)


def _store_tools(
    agent_id: str, tools: list[ToolSpec], stored_tools: list[dict[str, Any]], box: SecretBox, now: datetime
) -> list[dict[str, Any]]:
    stored_by_id = {tool["id"]: tool for tool in stored_tools}
    stored_by_name = {tool["name"]: tool for tool in stored_tools}
    result: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        previous = stored_by_id.get(tool.id or "") or stored_by_name.get(tool.name) or {}
        entry = tool.model_dump(mode="json", exclude={"http"})
        entry["id"] = tool.id or stored_by_name.get(tool.name, {}).get("id") or _new_tool_id()
        if tool.http is not None:
            entry["http"] = store_http(tool.http, previous.get("http"), ("tools", index, "http"), box, now)
        result.append(entry)
    return result


def _store_pre_connect(
    requests: list[PreConnectRequest], stored: list[dict[str, Any]], box: SecretBox, now: datetime
) -> list[dict[str, Any]]:
    """Header secrets are kept from the stored request at the same position, and only while its URL keeps
    the same scheme, host and port (a secret never follows to a new host)."""
    result: list[dict[str, Any]] = []
    for index, request in enumerate(requests):
        previous = stored[index].get("http") if index < len(stored) else None
        if previous is not None and _origin(previous["url"]) != _origin(request.http.url):
            previous = None
        entry = request.model_dump(mode="json", exclude={"http"})
        entry["http"] = store_http(request.http, previous, ("pre_connect_requests", index, "http"), box, now)
        result.append(entry)
    return result


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _store_llm(
    entries: list[LLMEndpoint], stored: list[dict[str, Any]], box: SecretBox
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if entry.api_key is not None and entry.api_key != SECRET_MASK:
            key_enc: str | None = box.encrypt(entry.api_key)
        else:
            # Keep the stored key only for the same endpoint, so a key is never sent to a new host.
            previous = stored[index] if index < len(stored) else {}
            key_enc = previous.get("api_key_enc") if previous.get("base_url") == entry.base_url else None
        public = entry.model_dump(mode="json", exclude={"api_key"})
        result.append({**public, "api_key_enc": key_enc})
    return result


# --- reading --------------------------------------------------------------------------------------
def _new_tool_id() -> str:
    return TOOL_ID_PREFIX + uuid.uuid4().hex[:24]


def _tools_with_ids(agent_id: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored tools, each with an ``id`` (derived for tools stored before ids existed)."""
    return [
        tool if tool.get("id") else {**tool, "id": _legacy_tool_id(agent_id, tool["name"])} for tool in tools
    ]


def _legacy_tool_id(agent_id: str, tool_name: str) -> str:
    digest = hashlib.sha256(f"{agent_id}\0{tool_name}".encode()).hexdigest()
    return TOOL_ID_PREFIX + digest[:24]


def _public_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("http") is None:
        return tool
    return {**tool, "http": public_http(tool["http"])}
