"""The stored form of an agent and the three views of it.

An agent is stored as one JSON document (``agents.document``). Write-only secrets inside it are
encrypted with the ``SecretBox``: HTTP-tool header values as ``value_enc`` (plus ``last_set_at``) and
BYO-LLM keys as ``api_key_enc``. From the document we render

- the public record (``AgentRecord`` shape): header values masked as ``"***"``, ``api_key`` omitted;
- the server-side ``SessionConfig`` with secrets decrypted (for the realtime engine only).

The update rules of PROTOCOL.md §3.3 (partial update, ``tools`` replaces the list, per-header
set / keep / remove, ``llm: []`` clears) live here too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from voxgate.outbound.forbidden_headers import header_is_forbidden
from voxgate.protocol.config import (
    SECRET_MASK,
    AgentCreate,
    AgentUpdate,
    HttpHeader,
    InputConfig,
    LLMEndpoint,
    OutputConfig,
    SessionConfig,
    ToolSpec,
)
from voxgate.store.secret_box import SecretBox

Loc = tuple[str | int, ...]
Document = dict[str, Any]


class AgentDocumentError(ValueError):
    """A request is well-formed but cannot be applied (e.g. keeping a header secret that was never set)."""

    def __init__(self, loc: Loc, message: str, error_type: str = "value_error") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.error_type = error_type


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a ``Z`` suffix."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_document(create: AgentCreate, box: SecretBox, now: datetime) -> Document:
    """The stored document for a newly created agent."""
    voice_id = create.voice.voice_id
    return {
        "name": create.name,
        "system_prompt": create.system_prompt,
        "voice": {"voice_id": voice_id},
        "greeting": create.greeting,
        "input": _dump_input(create.input or InputConfig()),
        "output": _dump_output(create.output or OutputConfig(voice=voice_id), voice_id),
        "tools": _store_tools(create.tools or [], [], box, now),
        "llm": _store_llm(create.llm or [], [], box),
    }


def apply_update(document: Document, update: AgentUpdate, box: SecretBox, now: datetime) -> Document:
    """A new document: ``document`` with the fields present in ``update`` applied (§3.3)."""
    given = update.model_fields_set
    result = dict(document)
    for required in ("name", "system_prompt", "voice"):
        if required in given and getattr(update, required) is None:
            raise AgentDocumentError((required,), f"{required} may not be null", "missing")
    if update.name is not None:
        result["name"] = update.name
    if update.system_prompt is not None:
        result["system_prompt"] = update.system_prompt
    if update.voice is not None:
        result["voice"] = {"voice_id": update.voice.voice_id}
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
        result["tools"] = _store_tools(update.tools or [], document.get("tools", []), box, now)
    if "llm" in given:
        result["llm"] = _store_llm(update.llm or [], document.get("llm", []), box)
    return result


def render_record(
    agent_id: str, document: Document, created_at: datetime, updated_at: datetime
) -> dict[str, Any]:
    """The agent as the API returns it (AgentRecord shape), secrets masked."""
    return {
        "id": agent_id,
        "name": document["name"],
        "system_prompt": document["system_prompt"],
        "voice": document["voice"],
        "greeting": document.get("greeting"),
        "input": document["input"],
        "output": document["output"],
        "tools": [_public_tool(tool) for tool in document.get("tools", [])],
        "llm": [{"base_url": e["base_url"], "model": e["model"]} for e in document.get("llm", [])],
        "created_at": format_timestamp(created_at),
        "updated_at": format_timestamp(updated_at),
    }


def render_session_config(agent_id: str, document: Document, box: SecretBox) -> SessionConfig:
    """The agent as a live session uses it: header values and llm api_key decrypted. Server-side only."""
    tools: list[dict[str, Any]] = []
    hosts: set[str] = set()
    for stored in document.get("tools", []):
        tool = {k: v for k, v in stored.items() if k != "http"}
        http = stored.get("http")
        if http is not None:
            hosts.add((urlsplit(http["url"]).hostname or "").lower())
            headers = [
                {"name": h["name"], "value": box.decrypt(h["value_enc"])}
                for h in http["headers"]
                if not header_is_forbidden(h["name"])  # stored before transport headers were refused
            ]
            tool["http"] = {**http, "headers": headers}
        tools.append(tool)
    llm: list[dict[str, Any]] = []
    for entry in document.get("llm", []):
        hosts.add((urlsplit(entry["base_url"]).hostname or "").lower())
        key = entry.get("api_key_enc")
        llm.append(
            {
                "base_url": entry["base_url"],
                "model": entry["model"],
                "api_key": box.decrypt(key) if key else None,
            }
        )
    data = {
        "agent_id": agent_id,
        "system_prompt": document["system_prompt"],
        "greeting": document.get("greeting"),
        "input": document["input"],
        "output": document["output"],
        "tools": tools,
        "llm": llm,
    }
    # The stored URLs were checked against the operator's host rules when they were written.
    return SessionConfig.model_validate(data, context={"allowed_private_hosts": sorted(hosts)})


def _dump_input(config: InputConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude_none=True)


def _dump_output(config: OutputConfig, voice_id: str) -> dict[str, Any]:
    # voice.voice_id is authoritative; output.voice mirrors it (PROTOCOL.md §3.1).
    return {**config.model_dump(mode="json", exclude_none=True), "voice": voice_id}


def _store_tools(
    tools: list[ToolSpec], stored_tools: list[dict[str, Any]], box: SecretBox, now: datetime
) -> list[dict[str, Any]]:
    stored_by_name = {tool["name"]: tool for tool in stored_tools}
    result: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        entry = tool.model_dump(mode="json", exclude={"http"})
        if tool.http is not None:
            previous = (stored_by_name.get(tool.name) or {}).get("http") or {}
            previous_headers = {h["name"].lower(): h for h in previous.get("headers", [])}
            headers = _store_headers(
                tool.http.headers, previous_headers, ("tools", index, "http", "headers"), box, now
            )
            entry["http"] = {"url": tool.http.url, "http_method": tool.http.http_method, "headers": headers}
        result.append(entry)
    return result


def _store_headers(
    headers: list[HttpHeader], previous: dict[str, dict[str, Any]], loc: Loc, box: SecretBox, now: datetime
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, header in enumerate(headers):
        key = header.name.lower()
        if key in seen:
            raise AgentDocumentError((*loc, index, "name"), f"duplicate header '{header.name}'")
        seen.add(key)
        if header.remove:
            continue
        if header.value is not None and header.value != SECRET_MASK:
            result.append(
                {
                    "name": header.name,
                    "value_enc": box.encrypt(header.value),
                    "last_set_at": format_timestamp(now),
                }
            )
            continue
        kept = previous.get(key)
        if kept is None:
            raise AgentDocumentError(
                (*loc, index, "value"),
                f"header '{header.name}' has no stored value to keep; send a value",
                "missing",
            )
        result.append({**kept, "name": header.name})
    return result


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
        result.append({"base_url": entry.base_url, "model": entry.model, "api_key_enc": key_enc})
    return result


def _public_tool(tool: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in tool.items() if k != "http"}
    http = tool.get("http")
    if http is not None:
        headers = [
            {"name": h["name"], "value": SECRET_MASK, "last_set_at": h.get("last_set_at")}
            for h in http.get("headers", [])
            if not header_is_forbidden(h["name"])
        ]
        public["http"] = {"url": http["url"], "http_method": http["http_method"], "headers": headers}
    return public
