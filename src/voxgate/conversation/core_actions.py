"""What the conversation core asks its driver to do: plain values, performed in order.

The floor's own actions (:mod:`voxgate.conversation.floor`: start, release, drop or interrupt a reply,
tell turn-taking who speaks) and the tool calls' (:mod:`voxgate.conversation.tool_calls`: deadlines, a
hold-mode HTTP tool) pass through unchanged; the rest are here.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.conversation.floor import FloorAction, StartReply
from voxgate.conversation.timings import TurnTimings
from voxgate.conversation.tool_calls import ToolAction
from voxgate.protocol.config import SessionConfig, TurnDetection
from voxgate.protocol.events import ServerEvent
from voxgate.speech.base import ChatMessage


@dataclass(frozen=True, slots=True)
class Send:
    event: ServerEvent


@dataclass(frozen=True, slots=True)
class LaunchReply:
    """Start the reply the floor asked for: the LLM's answer to ``messages``, or ``start.text``."""

    start: StartReply
    messages: list[ChatMessage] | None
    timings: TurnTimings


@dataclass(frozen=True, slots=True)
class ConfigureTurns:
    turn_detection: TurnDetection
    keyterms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """Check an updated configuration against what only the driver can measure (the LLM's prompt budget,
    counted with its tokenizer); the answer comes back through ``SessionCore.config_verified``."""

    config: SessionConfig


@dataclass(frozen=True, slots=True)
class SaveCheckpoint:
    """Save the session's state, so that it can be resumed (on any instance) after a drop."""


@dataclass(frozen=True, slots=True)
class Prefill:
    """Prefill the LLM's prompt cache with ``messages``. ``speculative``: the user's words while they speak
    or pause, best-effort (skipped while the model is busy, the latest wins); with ``anticipate`` the model
    may also start its answer."""

    messages: list[ChatMessage]
    speculative: bool = False
    anticipate: bool = False


@dataclass(frozen=True, slots=True)
class RecordTurn:
    timings: TurnTimings


@dataclass(frozen=True, slots=True)
class CutReply:
    """Stop a reply being heard because the session ends: it keeps what was heard, without reply events.
    The driver reports what was heard with ``SessionCore.reply_cut``."""

    reply_id: str


@dataclass(frozen=True, slots=True)
class Close:
    """End the connection. ``ending``: how the session ends — ``ended`` (for good: its checkpoint is
    removed, ``session.ended`` is sent first when ``announce``), ``detached`` (the transport went away:
    the session stays resumable) or ``abandoned`` (another connection took it over)."""

    code: int
    reason: str = ""
    ending: str = "ended"
    announce: bool = False


CoreAction = (
    FloorAction
    | ToolAction
    | Send
    | LaunchReply
    | ConfigureTurns
    | VerifyConfig
    | SaveCheckpoint
    | Prefill
    | RecordTurn
    | CutReply
    | Close
)
