"""Resolving and updating a session's configuration from ``session.update`` messages: pure functions.

The first ``session.update`` of a connection either names a stored agent (``agent_id`` alone: the caller
loads it) or configures the session inline (:func:`inline_config`); later ones are merged into the
effective configuration (:func:`apply_update`). Errors come back as values in the protocol's own shape
(:class:`~voxgate.protocol.events.ProtocolError`), with ``param`` naming the field; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from voxgate.protocol.config import (
    SESSION_PATCH_SHAPES,
    AudioFormat,
    InputConfig,
    OutputConfig,
    SessionConfig,
    SessionConfigPatch,
)
from voxgate.protocol.errors import ErrorCode
from voxgate.protocol.events import ProtocolError, protocol_error_from_validation
from voxgate.protocol.unknown_fields import drop_unknown_fields


@dataclass(frozen=True, slots=True)
class ParsedPatch:
    patch: SessionConfigPatch
    ignored: list[str]
    """Fields the server does not implement (yet), dropped from the message: accepted, logged, unused."""


def parse_patch(session: dict[str, Any]) -> ParsedPatch | ProtocolError:
    """Validate the ``session`` object of a ``session.update`` (unknown fields are dropped in place)."""
    ignored = drop_unknown_fields(session, SessionConfigPatch, "session", SESSION_PATCH_SHAPES)
    try:
        return ParsedPatch(SessionConfigPatch.model_validate(session), ignored)
    except ValidationError as exc:
        return protocol_error_from_validation(exc, prefix="session")


def first_update_error(session: dict[str, Any], patch: SessionConfigPatch) -> ProtocolError | None:
    """What the first ``session.update`` may not do: ``agent_id`` with other fields (but the media types,
    :func:`with_media_types`), or inline-only rules."""
    if patch.agent_id is not None and any(
        key != "agent_id" and not _only_type(session, key) for key in session
    ):
        return ProtocolError(
            ErrorCode.INVALID_VALUE, "agent_id is mutually exclusive with other session fields", "agent_id"
        )
    return inline_only_error(session, patch)


def _only_type(session: dict[str, Any], key: str) -> bool:
    value = session.get(key)
    return key in ("input", "output") and isinstance(value, dict) and set(value) <= {"type"}


def with_media_types(config: SessionConfig, patch: SessionConfigPatch) -> SessionConfig:
    """A stored agent opened with ``input.type``/``output.type`` beside its ``agent_id``: the same agent as
    a text (or voice) session, e.g. a chat widget on a phone agent."""
    updates: dict[str, Any] = {}
    for key, current in (("input", config.input), ("output", config.output)):
        media = (getattr(patch, key) or {}).get("type")
        if media is not None:
            updates[key] = current.model_copy(
                update={"type": type(current).model_validate({"type": media}).type}
            )
    return config.model_copy(update=updates) if updates else config


def inline_only_error(session: dict[str, Any], patch: SessionConfigPatch) -> ProtocolError | None:
    """Stored-agent features a ``session.update`` may not set: a BYO LLM, HTTP tools."""
    if "llm" in session:
        return ProtocolError(
            ErrorCode.INVALID_VALUE,
            "BYO LLM config is not allowed on session.update; "
            "define it on a stored agent via POST /v1/agents",
            "session.llm",
        )
    for index, tool in enumerate(patch.tools or []):
        if tool.http is not None:
            return ProtocolError(
                ErrorCode.INVALID_VALUE,
                "HTTP tools are only available on stored agents (POST /v1/agents)",
                f"session.tools.{index}.http",
            )
    return None


def inline_config(patch: SessionConfigPatch) -> SessionConfig | ProtocolError:
    """The configuration of a session configured inline by its first ``session.update``."""
    if (error := turn_detection_error(patch.input or {})) is not None:
        return error  # checked before the model's own check, which would only say invalid_value
    try:
        config = SessionConfig(
            system_prompt=patch.system_prompt or "",
            greeting=patch.greeting,
            input=InputConfig.model_validate(patch.input or {}),
            output=OutputConfig.model_validate(patch.output or {}),
            tools=list(patch.tools or []),
        )
    except ValidationError as exc:
        return _sub_object_error(exc)
    return config


@dataclass(slots=True)
class ConfigUpdate:
    """The result of a later ``session.update``: the new configuration (None when refused) and the errors
    to report (an immutable field is reported while the rest of the update still applies)."""

    config: SessionConfig | None
    errors: list[ProtocolError] = field(default_factory=list)


def apply_update(config: SessionConfig, session: dict[str, Any], patch: SessionConfigPatch) -> ConfigUpdate:
    """Merge a later ``session.update`` into ``config`` (PROTOCOL.md §7.2)."""
    if "agent_id" in session:
        return ConfigUpdate(
            None,
            [
                ProtocolError(
                    ErrorCode.AGENT_ID_NOT_FIRST,
                    "agent_id is only allowed in the first session.update",
                    "agent_id",
                )
            ],
        )
    if (error := inline_only_error(session, patch)) is not None:
        return ConfigUpdate(None, [error])
    updates: dict[str, Any] = {}
    immutable: list[str] = []
    if "greeting" in session and patch.greeting != config.greeting:
        immutable.append("greeting")
    if patch.system_prompt is not None:
        updates["system_prompt"] = patch.system_prompt
    if patch.tools is not None:
        updates["tools"] = list(patch.tools)
    if patch.input is not None:
        merged = _merged_input(config.input, patch.input)
        if (error := turn_detection_error(merged)) is not None:
            return ConfigUpdate(None, [error])
        try:
            updates["input"] = InputConfig.model_validate(merged)
        except ValidationError as exc:
            return ConfigUpdate(None, [protocol_error_from_validation(exc, prefix="session.input")])
    if patch.output is not None:
        output = dict(patch.output)
        try:
            if "voice" in output and output.pop("voice") != config.output.voice:
                immutable.append("output.voice")
            if (
                "format" in output
                and AudioFormat.model_validate(output.pop("format")) != config.output.format
            ):
                immutable.append("output.format")
            if "type" in output and output.pop("type") != config.output.type:
                immutable.append("output.type")
            updates["output"] = OutputConfig.model_validate({**config.output.model_dump(), **output})
        except ValidationError as exc:
            return ConfigUpdate(None, [protocol_error_from_validation(exc, prefix="session.output")])
    errors = [
        ProtocolError(
            ErrorCode.IMMUTABLE_FIELD, f"{param} cannot be changed after session.ready", f"session.{param}"
        )
        for param in immutable
    ]
    return ConfigUpdate(config.model_copy(update=updates), errors)


def _merged_input(current: InputConfig, changes: dict[str, Any]) -> dict[str, Any]:
    merged = current.model_dump()
    for key, value in changes.items():
        if key == "turn_detection" and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def turn_detection_error(input_config: dict[str, Any]) -> ProtocolError | None:
    td = input_config.get("turn_detection")
    if isinstance(td, dict):
        low, high = td.get("min_silence", 1000), td.get("max_silence", 3000)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            return ProtocolError(
                ErrorCode.INVALID_CONFIG,
                "min_silence must not exceed max_silence",
                "session.input.turn_detection.min_silence",
            )
    return None


def _sub_object_error(exc: ValidationError) -> ProtocolError:
    # Sub-objects were validated separately: rebuild the path from the model that failed.
    prefix = {"InputConfig": "session.input", "OutputConfig": "session.output"}.get(exc.title, "session")
    return protocol_error_from_validation(exc, prefix=prefix)
