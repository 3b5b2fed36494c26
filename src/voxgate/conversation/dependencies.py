"""What a session needs from the outside, and how it reaches its client: the seams a transport fills in.

A transport (the ``/v1/ws`` WebSocket, the Twilio media-stream bridge, a test) builds one
:class:`SessionDependencies`, hands the session an :class:`EventSink` for its events, and pushes what the
client sent (parsed events, and the notices of :mod:`voxgate.conversation.notices`) into the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from voxgate.config import Settings
from voxgate.conversation.http_tools import HttpToolRunner
from voxgate.conversation.session_telemetry import SessionTelemetry, TurnLog
from voxgate.conversation.turns import TurnTuning
from voxgate.protocol.config import LLMEndpoint, SessionConfig
from voxgate.protocol.events import ServerEvent
from voxgate.speech.base import LanguageModel, SpeechStack
from voxgate.store.checkpoints import CheckpointStore
from voxgate.store.resume_tokens import ResumeTokens


class SinkClosed(Exception):
    """The transport can no longer deliver events (the client went away)."""


class EventSink(Protocol):
    async def send(self, event: ServerEvent) -> None:
        """Deliver one event; raise :class:`SinkClosed` when the client is gone."""
        ...

    async def close(self, code: int, reason: str = "") -> None: ...


@dataclass(slots=True)
class SessionDependencies:
    settings: Settings
    speech: Callable[[], Awaitable[SpeechStack]]
    load_agent: Callable[[str], Awaitable[SessionConfig | None]]
    """Loads a stored agent of the connection's project (decrypted secrets), or None."""
    checkpoints: CheckpointStore
    project_id: str
    max_duration_seconds: float
    http_tools: HttpToolRunner | None = None
    build_llm: Callable[[LLMEndpoint], LanguageModel] | None = None
    """Builds a provider for a stored agent's bring-your-own LLM entry."""
    turn_tuning: TurnTuning = field(default_factory=TurnTuning)
    reply_lead_ms: float = 150.0
    acknowledged_playout: bool = False
    """When true, an interrupted reply keeps only the audio the transport acknowledged with
    ``notices.PlayoutAcknowledged`` (the Twilio bridge), instead of the time-based playout estimate."""
    input_rate_burst_seconds: float | None = None
    """How far ahead of real time input audio may run (see conversation.input_rate); None: the setting
    ``input_rate_burst_seconds``. A transport that replays audio it buffered itself may allow more."""
    resume_tokens: ResumeTokens = field(default_factory=ResumeTokens.ephemeral)
    """Signs the ``resume_token`` of ``session.ready`` (the server's key, so that any instance accepts it)."""
    resume_only: str | None = None
    """The connection's credential is a resume token of this session id: it may only resume that session."""
    session_facts: Mapping[str, str] = field(default_factory=dict)
    """What the transport knows of the session (``channel``, ``caller_number``, ``called_number``): what
    pre-connect requests may send (``conversation.pre_connect``)."""
    telemetry: SessionTelemetry = field(default_factory=TurnLog)
    """Where the session reports its finished turns and input frame lag (the server: its Prometheus
    meter of the connection; by default the turns are only logged)."""
