"""The effective session configuration as the client may see it: ``config`` of ``session.ready`` and
``session.updated`` (HOSTED.md §4).

The view is the :class:`~voxgate.protocol.config.SessionConfig` dumped as a whole (so a field added to the
models appears without a change here), with the secrets taken out wherever they occur:

- HTTP header lists (``tools[].http.headers``, ``pre_connect_requests[].http.headers``) keep only each
  header's ``name`` (and ``last_set_at`` when known), never a value, not even a mask;
- ``api_key`` (``llm[]``) and ``secret`` (a webhook) are left out.

Tool ``parameters`` are JSON Schemas written by the client: they are copied untouched, even where a
property is called ``secret``. ``agent_id`` is shown as ``id`` (null for an inline session); every tool
has exactly HOSTED.md §4's fields, ``type: "function"`` first, and ``http`` only when it is an HTTP tool.
"""

from __future__ import annotations

from typing import Any

from voxgate.protocol.config import SessionConfig

SECRET_KEYS = frozenset({"api_key", "secret"})
"""Keys whose values are credentials, dropped wherever they appear (outside tool parameter schemas)."""
HEADER_KEPT_KEYS = ("name", "last_set_at")


def session_config_view(config: SessionConfig) -> dict[str, Any]:
    """The client's view of ``config``: everything but the secrets (see the module docstring)."""
    data = _without_secrets(config.model_dump(mode="json"))
    view: dict[str, Any] = {"id": data.pop("agent_id", None), **data}
    view["tools"] = [_tool_view(tool) for tool in view.get("tools") or []]
    view.setdefault("pre_connect_requests", [])
    return view


TOOL_VIEW_KEYS = (
    "name",
    "description",
    "parameters",
    "execution_mode",
    "timeout_seconds",
    "response_instructions",
    "http",
)
"""HOSTED.md §4's tool shape in ``config``; the stored tool's other fields (``id``, keypad arguments) stay
on the agent record."""


def without_secrets(value: Any) -> Any:
    """A copy of any configuration-shaped JSON (a ``session.update`` payload, an agent record) with the
    secrets taken out as in the view: header values, ``api_key``, ``secret``."""
    return _without_secrets(value)


def _tool_view(tool: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"type": "function"}
    shown.update({key: tool.get(key) for key in TOOL_VIEW_KEYS})
    if shown.get("http") is None:
        shown.pop("http", None)
    return shown


def _without_secrets(value: Any, key: str | None = None) -> Any:
    if key == "parameters":
        return value
    if key == "headers":
        return _header_names(value)
    if isinstance(value, dict):
        return {k: _without_secrets(v, k) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _header_names(headers: Any) -> list[dict[str, Any]]:
    """``[{name, value, ...}]`` or ``{name: value}`` as ``[{name[, last_set_at]}]``."""
    if isinstance(headers, dict):
        return [{"name": name} for name in headers]
    names: list[dict[str, Any]] = []
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and "name" in header:
            names.append({k: header[k] for k in HEADER_KEPT_KEYS if header.get(k) is not None})
    return names
