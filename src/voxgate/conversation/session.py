"""The conversation state machine (PROTOCOL.md §4-§11), transport-agnostic.

A :class:`Session` consumes input items from one queue, one at a time: parsed client events, protocol
errors found by the transport, :class:`TransportClosed`, and its own internal notifications (turn-taking
task results, reply completion, tool timeouts, the duration cap). It emits server events through an
:class:`EventSink`. Only the active reply's audio goes to the sink from another task (the reply task); every
other event is sent from the session loop, which is what keeps the documented event order.

Phases: ``connected`` (no configuration yet) -> ``ready`` -> ``ended``. Every task the session starts is
cancelled and awaited when :meth:`Session.run` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from voxgate.audio.codecs import AudioDecodeError, decode_base64_audio, sample_rate_for
from voxgate.audio.resample import StreamResampler, to_float32
from voxgate.config import Settings
from voxgate.conversation.floor import (
    AddUserTurn,
    AnnounceReply,
    AnnounceUserTurn,
    DropReply,
    Floor,
    FloorAction,
    InterruptReply,
    ReleaseReply,
    RetractUserTurn,
    SetAgentActive,
    StartReply,
)
from voxgate.conversation.http_tools import HttpToolOutcome, HttpToolRunner
from voxgate.conversation.input_queue import SessionInputQueue
from voxgate.conversation.input_rate import InputRateBudget
from voxgate.conversation.ledger import CallState, Ledger, ToolCallRecord
from voxgate.conversation.loop_stalls import StallCredit, loop_heartbeat
from voxgate.conversation.prompt_limits import prompt_budget_error
from voxgate.conversation.reply import Reply, ReplyContext, ReplyOutcome
from voxgate.conversation.timings import TurnTimings, record_frame_lag, record_turn
from voxgate.conversation.tool_calls import ClearDeadline, RunHttpTool, SetDeadline, ToolCalls, ToolStep
from voxgate.conversation.tools import ToolSet, http_headers, timeout_result
from voxgate.conversation.turns import (
    FinalTranscript,
    PartialTranscript,
    SpeculativeTranscript,
    SpeechStarted,
    SpeechStopped,
    TurnSignal,
    TurnTaker,
    TurnTaskResult,
    TurnTuning,
)
from voxgate.protocol.config import (
    SESSION_PATCH_SHAPES,
    AudioFormat,
    InputConfig,
    LLMEndpoint,
    OutputConfig,
    SessionConfig,
    SessionConfigPatch,
)
from voxgate.protocol.errors import CLOSING_CODES, CloseCode, ErrorCode
from voxgate.protocol.events import (
    AnyClientEvent,
    ConversationMessage,
    InputAudio,
    InputSpeechStarted,
    InputSpeechStopped,
    ProtocolError,
    ReplyCancel,
    ReplyCreate,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionEnd,
    SessionEnded,
    SessionReady,
    SessionResume,
    SessionUpdate,
    SessionUpdated,
    ToolCall,
    ToolResult,
    TranscriptAgent,
    TranscriptUser,
    TranscriptUserDelta,
    protocol_error_from_validation,
    session_error,
)
from voxgate.protocol.session_view import session_config_view
from voxgate.protocol.unknown_fields import drop_unknown_fields
from voxgate.speech.base import (
    INPUT_SAMPLE_RATE,
    ChatMessage,
    LanguageModel,
    PromptPrefilling,
    SpeechStack,
)
from voxgate.store.checkpoints import (
    CheckpointStore,
    CheckpointStoreUnavailable,
    ClaimOutcome,
    SessionCheckpoint,
    SessionOwnershipLost,
)
from voxgate.store.resume_tokens import ResumeTokens

logger = logging.getLogger(__name__)

GAP_CHECK_SECONDS = 0.1
GAP_THRESHOLD_SECONDS = 0.3


def audio_gap_ms(now: float, woke_late_by: float, last_audio: float, last_report: float) -> float | None:
    """Milliseconds of missing input to count as silence, or None. ``last_audio``: when the client's latest
    frame *arrived* (frames still queued for processing are not a gap). A check that runs late means the
    event loop itself was stalled (a blocking call, a starved CPU): the client's frames may be waiting
    unread in the socket, so no gap is reported until the loop has caught up."""
    if woke_late_by >= GAP_CHECK_SECONDS:
        return None
    since = max(last_audio, last_report)
    if now - last_audio >= GAP_THRESHOLD_SECONDS and now > since:
        return (now - since) * 1000
    return None


class SinkClosed(Exception):
    """The transport can no longer deliver events (the client went away)."""


class EventSink(Protocol):
    async def send(self, event: ServerEvent) -> None:
        """Deliver one event; raise :class:`SinkClosed` when the client is gone."""
        ...

    async def close(self, code: int, reason: str = "") -> None: ...


# --- queue items besides client events ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TransportClosed:
    pass


@dataclass(frozen=True, slots=True)
class PlayoutAcknowledged:
    """From a transport whose client reports playback (a Twilio ``mark`` echo): the listener has heard the
    first ``played_ms`` milliseconds of reply ``reply_id``. Counts only with
    ``SessionDependencies.acknowledged_playout``; stale or unknown replies are ignored."""

    reply_id: str
    played_ms: float


@dataclass(frozen=True, slots=True)
class _ReplyFinished:
    reply: Reply
    task: asyncio.Task[ReplyOutcome]


@dataclass(frozen=True, slots=True)
class _ReplyReady:
    """A tentative reply asks to be heard (its first audio, a tool call or its end is ready)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class _ToolCallProposed:
    """A running reply's LLM called a client tool."""

    record: ToolCallRecord


@dataclass(frozen=True, slots=True)
class _ToolTimedOut:
    call_id: str


@dataclass(frozen=True, slots=True)
class _HttpToolDone:
    call_id: str
    outcome: HttpToolOutcome


@dataclass(frozen=True, slots=True)
class _AudioGap:
    milliseconds: float


@dataclass(frozen=True, slots=True)
class _DurationExceeded:
    pass


@dataclass(frozen=True, slots=True)
class _ConfigureDeadline:
    """The configuration deadline passed: ends the connection unless a session.update or session.resume
    was accepted (the items before this one in the queue were handled first)."""


SessionInput = AnyClientEvent | ProtocolError | TransportClosed | TurnTaskResult | Any


class Phase(Enum):
    CONNECTED = "connected"
    READY = "ready"
    ENDED = "ended"


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
    :class:`PlayoutAcknowledged` (the Twilio bridge), instead of the time-based playout estimate."""
    input_rate_burst_seconds: float | None = None
    """How far ahead of real time input audio may run (see conversation.input_rate); None: the setting
    ``input_rate_burst_seconds``. A transport that replays audio it buffered itself may allow more."""
    resume_tokens: ResumeTokens = field(default_factory=ResumeTokens.ephemeral)
    """Signs the ``resume_token`` of ``session.ready`` (the server's key, so that any instance accepts it)."""
    resume_only: str | None = None
    """The connection's credential is a resume token of this session id: it may only resume that session."""


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Session:
    def __init__(self, deps: SessionDependencies, sink: EventSink) -> None:
        self.deps = deps
        self.sink = sink
        self.queue = SessionInputQueue()
        self.phase = Phase.CONNECTED
        self.session_id: str | None = None
        self.config = SessionConfig()
        self.ledger = Ledger()
        self.floor = Floor(_new_id)
        self.tool_calls = ToolCalls(self.ledger)
        self.stack: SpeechStack | None = None
        self.llm: LanguageModel | None = None
        self.turns: TurnTaker | None = None
        self.reply: Reply | None = None
        self.turn_history: list[TurnTimings] = []
        self._reply_task: asyncio.Task[ReplyOutcome] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        """Tool-call deadlines (``ToolCalls`` decides them, the driver keeps the timers)."""
        self._background: set[asyncio.Task[Any]] = set()
        self._duration_timer: asyncio.TimerHandle | None = None
        self._configure_timer: asyncio.TimerHandle | None = None
        self._decoder: tuple[str, StreamResampler] | None = None
        self._started_at = time.time()
        self._cap_from = self._started_at
        """When the duration cap started counting: this connection's start, or a resumed session's."""
        self._audio_seconds = 0.0
        self._last_audio = time.monotonic()
        self._last_gap_report = 0.0
        self._pending_timings: TurnTimings | None = None
        self._prefill_words: tuple[str, bool] | None = None
        """The user's words so far, waiting to be prefilled into the LLM (the latest wins)."""
        self._prefill_task: asyncio.Task[None] | None = None
        self._audio_arrivals: deque[float] = deque()
        """Arrival times of the queued input.audio frames (for the frame-processing lag and the rate)."""
        self.input_rate = InputRateBudget(
            deps.input_rate_burst_seconds or deps.settings.input_rate_burst_seconds
        )
        self._stall_credit: StallCredit | None = None
        """This session's share of the event loop's stalls, forgiven by the input-rate budget."""
        self._closed = False

    # --- public surface ---------------------------------------------------------------------------
    def push(self, item: SessionInput) -> None:
        """Queue one input: a parsed client event, a ProtocolError or TransportClosed from the transport,
        or an internal notification. Never blocks; items are handled in order by :meth:`run`."""
        if isinstance(item, InputAudio):
            now = time.monotonic()
            self._audio_arrivals.append(now)
            self._last_audio = now
            if self._stall_credit is None:
                self._stall_credit = StallCredit(loop_heartbeat())
            self.input_rate.forgive(self._stall_credit.new_credit(now), now)
        self.queue.put_nowait(item)

    post = push

    @property
    def hold(self) -> bool:
        return self.tool_calls.hold

    async def run(self) -> None:
        self._arm_deadlines()
        try:
            while self.phase is not Phase.ENDED:
                item = await self.queue.get()
                try:
                    await self._handle(item)
                except SinkClosed:
                    await self._on_transport_closed()
                except Exception:
                    logger.exception("session %s failed handling %s", self.session_id, type(item).__name__)
                    with contextlib.suppress(SinkClosed):
                        await self._error(
                            ProtocolError(ErrorCode.INTERNAL_ERROR, "internal error handling the message")
                        )
                if isinstance(item, InputAudio) and self._audio_arrivals:
                    record_frame_lag(time.monotonic() - self._audio_arrivals.popleft())
        finally:
            await self._shutdown()

    # --- dispatch ---------------------------------------------------------------------------------
    async def _handle(self, item: SessionInput) -> None:
        if isinstance(item, TransportClosed):
            await self._on_transport_closed()
        elif isinstance(item, ProtocolError):
            await self._error(item)
        elif isinstance(item, TurnTaskResult):
            if self.turns is not None:
                await self._on_turn_signals(self.turns.on_result(item))
        elif isinstance(item, _ReplyFinished):
            await self._on_reply_finished(item)
        elif isinstance(item, _ReplyReady):
            if item.reply is self.reply:
                await self._perform(self.floor.reply_ready(item.reply.reply_id))
            else:
                item.reply.release(False)
        elif isinstance(item, _ToolCallProposed):
            await self._on_tool_call_proposed(item.record)
        elif isinstance(item, PlayoutAcknowledged):
            if self.reply is not None and self.reply.reply_id == item.reply_id:
                self.reply.acknowledge_playout(item.played_ms)
        elif isinstance(item, _AudioGap):
            if self.turns is not None and self.phase is Phase.READY:
                await self._on_turn_signals(self.turns.on_gap(item.milliseconds))
        elif isinstance(item, _ToolTimedOut):
            await self._on_tool_timeout(item.call_id)
        elif isinstance(item, _HttpToolDone):
            await self._on_http_tool_done(item)
        elif isinstance(item, _DurationExceeded):
            await self._terminate(ErrorCode.SESSION_EXPIRED, "the maximum session duration was reached")
        elif isinstance(item, _ConfigureDeadline):
            if self.phase is Phase.CONNECTED:
                seconds = self.deps.settings.configure_timeout_seconds
                await self._terminate(
                    ErrorCode.SESSION_EXPIRED,
                    f"no session.update or session.resume was accepted within {seconds:g} s of connecting",
                )
        elif isinstance(item, SessionUpdate):
            if self.phase is Phase.CONNECTED and self.deps.resume_only is not None:
                await self._error(
                    ProtocolError(
                        ErrorCode.SESSION_FORBIDDEN,
                        "a resume token only resumes its own session: send session.resume",
                        "type",
                    )
                )
            elif self.phase is Phase.CONNECTED:
                await self._configure(item.session)
            else:
                await self._update(item.session)
        elif isinstance(item, SessionResume):
            if self.phase is Phase.CONNECTED:
                await self._resume(item.session_id)
            else:
                await self._error(
                    ProtocolError(
                        ErrorCode.INVALID_FORMAT,
                        "session.resume must be the first message of a connection",
                        "type",
                    )
                )
        elif self.phase is not Phase.READY:
            kind = getattr(item, "type", type(item).__name__)
            await self._error(
                ProtocolError(ErrorCode.INVALID_FORMAT, f"{kind} is not allowed before session.ready", "type")
            )
        elif isinstance(item, InputAudio):
            await self._on_audio(item)
        elif isinstance(item, ToolResult):
            await self._on_tool_result(item)
        elif isinstance(item, ReplyCreate):
            await self._on_reply_create(item.instructions)
        elif isinstance(item, ReplyCancel):
            if self.reply is not None and item.reply_id in (None, self.reply.reply_id):
                await self._perform(self.floor.interrupt())
        elif isinstance(item, ConversationMessage):
            if item.role == "user":
                self.ledger.add_user(_new_id("item"), item.content)
            else:
                self.ledger.add_system(_new_id("item"), item.content)
        elif isinstance(item, SessionEnd):
            await self._end_normally()

    async def _send(self, event: ServerEvent) -> None:
        await self.sink.send(event.stamped(time.time() - self._started_at))

    async def _error(self, error: ProtocolError) -> None:
        await self._send(session_error(error.code, error.message, error.param))
        if error.close is not None:
            await self._close(error.close, ended_event=self.phase is Phase.READY, reason=error.code)

    # --- configuration --------------------------------------------------------------------------------
    async def _configure(self, session: dict[str, Any]) -> None:
        patch = await self._parse_patch(session)
        if patch is None:
            return
        if patch.agent_id is not None:
            others = sorted(k for k, v in session.items() if k != "agent_id")
            if others:
                await self._error(
                    ProtocolError(
                        ErrorCode.INVALID_VALUE,
                        "agent_id is mutually exclusive with other session fields",
                        "agent_id",
                    )
                )
                return
            config = await self.deps.load_agent(patch.agent_id)
            if config is None:
                await self._error(
                    ProtocolError(
                        ErrorCode.AGENT_NOT_FOUND, f"agent '{patch.agent_id}' was not found", "agent_id"
                    )
                )
                return
            config = config.model_copy(update={"agent_id": patch.agent_id})
        else:
            if (error := self._inline_only_errors(session, patch)) is not None:
                await self._error(error)
                return
            try:
                config = SessionConfig(
                    system_prompt=patch.system_prompt or "",
                    greeting=patch.greeting,
                    input=InputConfig.model_validate(patch.input or {}),
                    output=OutputConfig.model_validate(patch.output or {}),
                    tools=list(patch.tools or []),
                )
            except ValidationError as exc:
                await self._error(self._config_error(exc, session))
                return
            if (error := _turn_detection_error(config.input.model_dump())) is not None:
                await self._error(error)
                return
        if not await self._initialise(config):
            return
        self.session_id = _new_id("sess")
        self._started_at = time.time()
        await self._become_ready()
        if config.greeting:
            await self._perform(self.floor.greet(config.greeting))

    async def _parse_patch(self, session: dict[str, Any]) -> SessionConfigPatch | None:
        # Unknown (not yet built) fields are dropped from the message in place, with one log line.
        ignored = drop_unknown_fields(session, SessionConfigPatch, "session", SESSION_PATCH_SHAPES)
        if ignored:
            logger.info("session.update: ignored unknown fields %s", ", ".join(ignored))
        try:
            return SessionConfigPatch.model_validate(session)
        except ValidationError as exc:
            await self._error(protocol_error_from_validation(exc, prefix="session"))
            return None

    @staticmethod
    def _inline_only_errors(session: dict[str, Any], patch: SessionConfigPatch) -> ProtocolError | None:
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

    @staticmethod
    def _config_error(exc: ValidationError, session: dict[str, Any]) -> ProtocolError:
        # Sub-objects were validated separately: rebuild the path from the pydantic location.
        first = exc.errors(include_url=False)[0]
        title = getattr(exc, "title", "")
        prefix = (
            "session.input"
            if title == "InputConfig"
            else "session.output"
            if title == "OutputConfig"
            else "session"
        )
        error = protocol_error_from_validation(exc, prefix=prefix)
        if first["type"] == "value_error" and "min_silence" in first["msg"]:
            return ProtocolError(ErrorCode.INVALID_CONFIG, error.message, error.param)
        return error

    async def _initialise(self, config: SessionConfig) -> bool:
        """Load the speech stack (bounded by the agent-ready timeout) and check the voice."""
        try:
            async with asyncio.timeout(self.deps.settings.agent_ready_timeout_seconds):
                stack = await self.deps.speech()
        except TimeoutError:
            await self._error(
                ProtocolError(
                    ErrorCode.INTERNAL_ERROR,
                    "the agent was not ready within the time limit",
                    close=CloseCode.INTERNAL_ERROR,
                )
            )
            return False
        except Exception as exc:
            logger.exception("speech stack failed to load")
            await self._error(
                ProtocolError(
                    ErrorCode.INTERNAL_ERROR,
                    f"the agent failed to initialise: {exc}",
                    close=CloseCode.INTERNAL_ERROR,
                )
            )
            return False
        if not stack.tts.has_voice(config.output.voice):
            await self._error(
                ProtocolError(
                    ErrorCode.INVALID_VALUE,
                    f"voice '{config.output.voice}' is not installed on this server",
                    "session.output.voice",
                )
            )
            return False
        llm = stack.llm
        if config.llm:
            if self.deps.build_llm is None:
                await self._error(
                    ProtocolError(
                        ErrorCode.INTERNAL_ERROR,
                        "bring-your-own LLM is not available",
                        close=CloseCode.INTERNAL_ERROR,
                    )
                )
                return False
            try:
                llm = self.deps.build_llm(config.llm[0])
            except Exception as exc:
                await self._error(
                    ProtocolError(
                        ErrorCode.INTERNAL_ERROR,
                        f"the agent's LLM failed: {exc}",
                        close=CloseCode.INTERNAL_ERROR,
                    )
                )
                return False
        if (error := await prompt_budget_error(self.deps.settings, config, llm)) is not None:
            await self._error(error)
            return False
        self.stack = stack
        self.llm = llm
        self.config = config
        self.turns = TurnTaker(
            stack.vad.create_stream(),
            stack.stt,
            stack.turn_detector,
            post=self.post,
            new_item_id=lambda: _new_id("item"),
            tuning=self.deps.turn_tuning,
            may_resume=self.floor.resume_turn,
        )
        self.turns.configure(config.input.turn_detection, config.input.keyterms)
        return True

    async def _become_ready(self) -> None:
        assert self.session_id is not None
        self.phase = Phase.READY
        self._arm_duration_cap()  # again: a resumed session's cap may be lower
        self._spawn(self._watch_gaps(), "gap-watch")
        await self._checkpoint()
        expires_at = int(self._cap_from + self.deps.max_duration_seconds)
        resume_token = self.deps.resume_tokens.issue(
            self.session_id,
            self.deps.project_id,
            expires_at + int(self.deps.settings.resume_grace_seconds),  # usable after the last drop too
        )
        await self._send(
            SessionReady(
                session_id=self.session_id,
                resume_token=resume_token,
                expires_at=expires_at,
                config=session_config_view(self.config),
            )
        )
        self._spawn(self._warm_llm(), "llm-warm")

    def _arm_deadlines(self) -> None:
        """Both count from the connection: the configuration deadline and the duration cap."""
        loop = asyncio.get_running_loop()
        seconds = self.deps.settings.configure_timeout_seconds
        self._configure_timer = loop.call_later(seconds, self.post, _ConfigureDeadline())
        self._arm_duration_cap()

    def _arm_duration_cap(self) -> None:
        if self._duration_timer is not None:
            self._duration_timer.cancel()
        remaining = self.deps.max_duration_seconds - (time.time() - self._cap_from)
        loop = asyncio.get_running_loop()
        self._duration_timer = loop.call_later(max(0.0, remaining), self.post, _DurationExceeded())

    async def _warm_llm(self, user_words: str | None = None, *, anticipate: bool = False) -> None:
        """Prefill the system prompt, tools and conversation so far while the greeting plays or the user
        speaks, so a reply does not pay a cold prefill (about 3 s with tools for the embedded model).
        ``user_words``: what the user has said so far in the turn under way, prefilled as their message;
        with ``anticipate`` the LLM may also start its answer to them (``LlamaLLM.anticipate``)."""
        llm = self.llm
        if not isinstance(llm, PromptPrefilling) or self.session_id is None:
            return
        warm = llm.anticipate if anticipate else llm.warm
        messages = self.ledger.to_messages(self.config.system_prompt, None)
        if user_words:
            messages.append(ChatMessage(role="user", content=user_words))
        try:
            await warm(messages, ToolSet.of(self.config.tools).schemas(), session_key=self.session_id)
        except Exception:
            logger.warning("prefilling the LLM prompt failed; the first reply will prefill", exc_info=True)

    def _prefill_user_words(self, words: str, *, anticipate: bool = False) -> None:
        """Prefill the LLM with the user's words while they are still speaking (from a partial transcript)
        or pausing (the speculative transcript, which is also the final one unless they go on: the LLM
        may start its answer, see ``anticipate``). The reply's prompt then shares that prefix and
        prefills only what differs (llama.cpp reuses the longest matching prefix).

        Best-effort: only while no reply is running, and never queued behind other work on the model
        (another session's reply would wait for it); a newer text replaces one not yet started."""
        if not words or self.reply is not None or self.hold or self.phase is not Phase.READY:
            return
        self._prefill_words = (words, anticipate)
        if self._prefill_task is None or self._prefill_task.done():
            self._prefill_task = self._spawn(self._run_prefills(), "llm-prefill-user")

    async def _run_prefills(self) -> None:
        while (pending := self._prefill_words) is not None:
            self._prefill_words = None
            if self.reply is not None or (isinstance(self.llm, PromptPrefilling) and self.llm.busy):
                continue
            words, anticipate = pending
            await self._warm_llm(words, anticipate=anticipate)

    async def _resume(self, session_id: str) -> None:
        if self.deps.resume_only not in (None, session_id):
            await self._error(
                ProtocolError(
                    ErrorCode.SESSION_FORBIDDEN, "the resume token belongs to another session", "session_id"
                )
            )
            return
        try:
            outcome, checkpoint = await self.deps.checkpoints.claim(session_id, self.deps.project_id)
        except CheckpointStoreUnavailable as exc:
            logger.warning("resume of %s failed: %s", session_id, exc)
            await self._error(
                ProtocolError(
                    ErrorCode.INTERNAL_ERROR,
                    f"session storage is unavailable ({exc}); send session.resume again shortly",
                    "session_id",
                )
            )
            return
        if outcome is ClaimOutcome.FORBIDDEN:
            await self._error(
                ProtocolError(
                    ErrorCode.SESSION_FORBIDDEN, "the session belongs to another account", "session_id"
                )
            )
            return
        if outcome is not ClaimOutcome.CLAIMED or checkpoint is None:
            await self._error(
                ProtocolError(ErrorCode.SESSION_NOT_FOUND, "no resumable session with this id", "session_id")
            )
            return
        config = SessionConfig.model_validate(checkpoint.config)
        if not await self._initialise(config):
            await self.deps.checkpoints.detach(session_id)
            return
        self.session_id = session_id
        self.ledger = Ledger.from_dict(checkpoint.ledger)
        self.tool_calls = ToolCalls(self.ledger)
        self._started_at = checkpoint.started_at
        self._cap_from = checkpoint.started_at
        self._audio_seconds = checkpoint.audio_seconds
        self.deps.max_duration_seconds = min(self.deps.max_duration_seconds, checkpoint.max_duration_seconds)
        await self._become_ready()

    async def _update(self, session: dict[str, Any]) -> None:
        patch = await self._parse_patch(session)
        if patch is None:
            return
        if "agent_id" in session:
            await self._error(
                ProtocolError(
                    ErrorCode.AGENT_ID_NOT_FIRST,
                    "agent_id is only allowed in the first session.update",
                    "agent_id",
                )
            )
            return
        if (error := self._inline_only_errors(session, patch)) is not None:
            await self._error(error)
            return
        config = self.config
        updates: dict[str, Any] = {}
        immutable: list[str] = []
        if "greeting" in session and patch.greeting != config.greeting:
            immutable.append("greeting")
        if patch.system_prompt is not None:
            updates["system_prompt"] = patch.system_prompt
        if patch.tools is not None:
            updates["tools"] = list(patch.tools)
        if patch.input is not None:
            merged = config.input.model_dump()
            for key, value in patch.input.items():
                if key == "turn_detection" and isinstance(value, dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            if (error := _turn_detection_error(merged)) is not None:
                await self._error(error)
                return
            try:
                updates["input"] = InputConfig.model_validate(merged)
            except ValidationError as exc:
                await self._error(protocol_error_from_validation(exc, prefix="session.input"))
                return
        if patch.output is not None:
            output = dict(patch.output)
            try:
                if "voice" in output and output.pop("voice") != config.output.voice:
                    immutable.append("output.voice")
                if "format" in output:
                    fmt = output.pop("format")
                    if AudioFormat.model_validate(fmt) != config.output.format:
                        immutable.append("output.format")
                if "type" in output and output.pop("type") != config.output.type:
                    immutable.append("output.type")
                updates["output"] = OutputConfig.model_validate({**config.output.model_dump(), **output})
            except ValidationError as exc:
                await self._error(protocol_error_from_validation(exc, prefix="session.output"))
                return
        if error := await prompt_budget_error(
            self.deps.settings, config.model_copy(update=updates), self.llm
        ):
            await self._error(error)
            return
        for param in immutable:
            await self._error(
                ProtocolError(
                    ErrorCode.IMMUTABLE_FIELD,
                    f"{param} cannot be changed after session.ready",
                    f"session.{param}",
                )
            )
        self.config = config.model_copy(update=updates)
        if self.turns is not None:
            self.turns.configure(self.config.input.turn_detection, self.config.input.keyterms)
        await self._checkpoint()
        await self._send(SessionUpdated(config=session_config_view(self.config)))

    # --- audio in -------------------------------------------------------------------------------------
    async def _on_audio(self, event: InputAudio) -> None:
        encoding = self.config.input.format.encoding
        try:
            pcm = decode_base64_audio(encoding, event.audio)
        except AudioDecodeError as exc:
            await self._error(
                ProtocolError(ErrorCode.INVALID_AUDIO, f"input.audio could not be decoded: {exc}", "audio")
            )
            return
        if pcm.size == 0:
            return
        rate = sample_rate_for(encoding)
        arrived = self._audio_arrivals[0] if self._audio_arrivals else time.monotonic()
        admission = self.input_rate.admit(pcm.size / rate, arrived)
        if not admission.admitted:
            if admission.announce:
                await self._error(
                    ProtocolError(
                        ErrorCode.AUDIO_RATE_VIOLATION,
                        "input.audio arrives faster than real time: audio more than "
                        f"{self.input_rate.burst_seconds:g} s ahead of real time is dropped",
                    )
                )
            return
        if self._decoder is None or self._decoder[0] != encoding:
            self._decoder = (encoding, StreamResampler(rate, INPUT_SAMPLE_RATE, dtype=np.float32))
        self._audio_seconds += pcm.size / rate
        audio = self._decoder[1].process(to_float32(pcm))
        assert self.turns is not None
        if audio.size:
            await self._on_turn_signals(self.turns.feed(audio))

    async def _watch_gaps(self) -> None:
        while True:
            due = time.monotonic() + GAP_CHECK_SECONDS
            await asyncio.sleep(GAP_CHECK_SECONDS)
            turns = self.turns
            now = time.monotonic()
            if turns is None or not turns.in_utterance:
                continue
            gap = audio_gap_ms(now, now - due, self._last_audio, self._last_gap_report)
            if gap is not None:
                self._last_gap_report = now
                self.post(_AudioGap(gap))

    async def _on_turn_signals(self, signals: list[TurnSignal]) -> None:
        for signal in signals:
            if isinstance(signal, SpeechStarted):
                await self._send(InputSpeechStarted())
                await self._perform(
                    self.floor.speech_started(barge_in=signal.barge_in, resumed=signal.resumed)
                )
            elif isinstance(signal, PartialTranscript):
                if not self.hold:
                    await self._send(TranscriptUserDelta(text=signal.text, item_id=signal.item_id))
                    # The last word of a partial is often cut short or revised: prefill the words before it.
                    self._prefill_user_words(signal.text.rsplit(maxsplit=1)[0] if " " in signal.text else "")
            elif isinstance(signal, SpeculativeTranscript):
                self._prefill_user_words(signal.text, anticipate=True)
            elif isinstance(signal, SpeechStopped):
                await self._send(InputSpeechStopped())
                self._pending_timings = TurnTimings(
                    session_id=self.session_id or "",
                    speech_end=signal.speech_end_monotonic,
                    end_of_turn=signal.decided_monotonic,
                )
            elif isinstance(signal, FinalTranscript):
                await self._on_user_transcript(signal)

    async def _on_user_transcript(self, signal: FinalTranscript) -> None:
        if self._pending_timings is not None:
            self._pending_timings.stt_final = signal.decoded_monotonic
        if not signal.text:
            self._pending_timings = None
            return
        if self.hold:
            self.tool_calls.hold_user_turn(signal.item_id, signal.text)
            return
        await self._perform(self.floor.user_turn_ended(signal.item_id, signal.text))

    # --- floor actions ------------------------------------------------------------------------------
    async def _perform(self, actions: list[FloorAction]) -> None:
        """Carry out what the floor decided, in order."""
        for action in actions:
            if isinstance(action, StartReply):
                self._start_reply(action)
            elif isinstance(action, ReleaseReply):
                if self.reply is not None and self.reply.reply_id == action.reply_id:
                    self.reply.release(action.go)
            elif isinstance(action, AnnounceUserTurn):
                await self._send(TranscriptUser(text=action.text, item_id=action.item_id))
            elif isinstance(action, AnnounceReply):
                await self._send(ReplyStarted(reply_id=action.reply_id, item_id=action.item_id))
            elif isinstance(action, AddUserTurn):
                self.ledger.add_user(action.item_id, action.text)
                await self._checkpoint()
            elif isinstance(action, RetractUserTurn):
                self.ledger.retract_user(action.item_id)
            elif isinstance(action, DropReply):
                await self._drop_reply(action.reply_id)
            elif isinstance(action, InterruptReply):
                await self._interrupt_reply(action.reply_id)
            elif isinstance(action, SetAgentActive):
                if self.turns is not None:
                    await self._on_turn_signals(self.turns.set_agent_active(action.active))

    async def _kick(self) -> None:
        if self.phase is Phase.READY:
            await self._perform(self.floor.kick(hold=self.hold))

    # --- replies --------------------------------------------------------------------------------------
    def _start_reply(self, action: StartReply) -> None:
        """Start the reply the floor asked for: to the conversation so far, a fixed text (the greeting) or
        one-off instructions."""
        assert self.stack is not None and self.llm is not None and self.turns is not None
        timings = self._pending_timings or TurnTimings(session_id=self.session_id or "")
        self._pending_timings = None
        timings.reply_id = action.reply_id
        timings.reply_start = time.monotonic()
        context = ReplyContext(
            reply_id=action.reply_id,
            item_id=action.item_id,
            session_key=self.session_id or action.reply_id,
            llm=self.llm,
            tts=self.stack.tts,
            voice_id=self.config.output.voice,
            output_encoding=self.config.output.format.encoding,
            volume=lambda: self.config.output.volume,
            tools=ToolSet.of(self.config.tools),
            ledger=self.ledger,
            send=self._send,
            propose_call=lambda record: self.post(_ToolCallProposed(record)),
            http_runner=self.deps.http_tools,
            timings=timings,
            lead_ms=self.deps.reply_lead_ms,
            acknowledged_playout=self.deps.acknowledged_playout,
            tentative=action.tentative,
            ask_release=lambda reply: self.post(_ReplyReady(reply)),
        )
        if action.text is not None:
            reply = Reply(context, text=action.text)
        else:
            reply = Reply(
                context, messages=self.ledger.to_messages(self.config.system_prompt, action.instructions)
            )
        self.reply = reply
        task = asyncio.get_running_loop().create_task(reply.run(), name=action.reply_id)
        self._reply_task = task
        task.add_done_callback(lambda t: self.post(_ReplyFinished(reply, t)))

    async def _cancel_reply_task(self) -> Reply | None:
        reply, task = self.reply, self._reply_task
        self.reply = None
        self._reply_task = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return reply

    async def _drop_reply(self, reply_id: str) -> None:
        """A reply nothing of which was heard: stopped without reply events; its tool calls never happened."""
        if self.reply is None or self.reply.reply_id != reply_id:
            return
        await self._cancel_reply_task()
        self._apply_tool_step(self.tool_calls.discard_reply(reply_id))

    async def _interrupt_reply(self, reply_id: str) -> None:
        reply = self.reply
        if reply is None or reply.reply_id != reply_id:
            return
        # Even when the task already handed out all its audio, the listener may not have heard it all:
        # the playout clock decides what was heard.
        heard = reply.stop_audio()
        await self._cancel_reply_task()
        await self._finish_reply(reply, heard, status="interrupted")

    async def _on_reply_create(self, instructions: str | None) -> None:
        await self._perform(self.floor.reply_requested(instructions))

    async def _on_reply_finished(self, item: _ReplyFinished) -> None:
        if self.reply is not item.reply:
            return  # already interrupted or dropped, and reported
        if self.floor.state == "user_paused":
            # It ended before asking to be heard (it failed early): announce it now, unless the user's
            # turn is going on (the floor then drops it when that speech is reported).
            await self._perform(self.floor.reply_ready(item.reply.reply_id))
            if self.floor.state != "agent_speaking":
                return
        task = item.task
        error: str | None = None
        outcome: ReplyOutcome | None = None
        if task.cancelled():
            error = "cancelled"
        elif (exc := task.exception()) is not None:
            if isinstance(exc, SinkClosed):
                raise exc
            logger.error("reply %s failed", item.reply.reply_id, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"
        else:
            outcome = task.result()
        if outcome is None:
            # A failed reply ends interrupted at what was heard; the failure is a non-fatal session.error.
            heard = item.reply.stop_audio()
            await self._send(
                session_error(ErrorCode.INTERNAL_ERROR, f"the reply failed: {error or 'no answer'}")
            )
            await self._finish_reply(item.reply, heard, status="interrupted")
        else:
            item.reply.transcript.settle_all()
            await self._finish_reply(item.reply, outcome.text, status="completed", outcome=outcome)

    async def _finish_reply(
        self, reply: Reply, text: str, *, status: str, outcome: ReplyOutcome | None = None
    ) -> None:
        ctx = reply.context
        self.reply = None
        self._reply_task = None
        interrupted = status == "interrupted"
        self.ledger.add_agent(ctx.item_id, ctx.reply_id, text, interrupted=interrupted)
        if (delta := reply.transcript.rest()) is not None:  # the deltas add up to the final text
            await self._send(delta)
        await self._send(
            TranscriptAgent(text=text, reply_id=ctx.reply_id, item_id=ctx.item_id, interrupted=interrupted)
        )
        await self._send(ReplyDone(status=status, reply_id=ctx.reply_id))  # type: ignore[arg-type]
        self.turn_history.append(ctx.timings)
        record_turn(ctx.timings)
        step = self.tool_calls.reply_ended(
            ctx.reply_id,
            status="completed" if status == "completed" else "interrupted",
            hold_http_calls=outcome.hold_http_calls if outcome else None,
        )
        self._apply_tool_step(step)
        await self._perform(self.floor.reply_ended(ctx.reply_id))
        await self._checkpoint()
        await self._kick()
        if self.reply is None:
            # Prefill the conversation so far (this reply as it was heard) while the user answers, so the
            # next reply prefills only the new user message.
            self._spawn(self._warm_llm(), "llm-warm")

    # --- tools ----------------------------------------------------------------------------------------
    def _apply_tool_step(self, step: ToolStep) -> list[tuple[str, str]]:
        """Perform a tool-call transition's timer and HTTP actions; returns the user turns it released."""
        loop = asyncio.get_running_loop()
        for action in step.actions:
            if isinstance(action, SetDeadline):
                delay = max(0.0, action.at - time.monotonic())
                self._timers[action.call_id] = loop.call_later(
                    delay, self.post, _ToolTimedOut(action.call_id)
                )
            elif isinstance(action, ClearDeadline):
                timer = self._timers.pop(action.call_id, None)
                if timer is not None:
                    timer.cancel()
            elif isinstance(action, RunHttpTool):
                self._spawn(self._run_hold_http(action.record), f"http-{action.record.call_id}")
        if step.reply_wanted:
            self.floor.want_reply()
        return step.released_user_items

    async def _on_tool_call_proposed(self, record: ToolCallRecord) -> None:
        if self.reply is None or self.reply.reply_id != record.reply_id:
            return  # its reply was interrupted or dropped meanwhile: the call never happened
        spec = ToolSet.of(self.config.tools).find(record.name)
        timeout = spec.timeout_seconds if spec is not None else 120.0
        self._apply_tool_step(self.tool_calls.client_call_sent(record, time.monotonic(), timeout))
        await self._send(
            ToolCall(
                call_id=record.call_id, name=record.name, arguments=record.arguments, args=record.arguments
            )
        )

    def _running_reply_id(self) -> str | None:
        return self.reply.reply_id if self.reply is not None else None

    async def _on_tool_result(self, event: ToolResult) -> None:
        step = self.tool_calls.result(
            event.call_id, event.result, event.is_error, running_reply=self._running_reply_id()
        )
        if step.rejected is not None:
            await self._error(ProtocolError(ErrorCode.INVALID_VALUE, step.rejected.problem, "call_id"))
            return
        await self._after_tool_step(step, event.call_id)

    async def _on_tool_timeout(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        record = self.ledger.calls.get(call_id)
        if record is None:
            return
        spec = ToolSet.of(self.config.tools).find(record.name)
        text = timeout_result(spec.timeout_seconds if spec is not None else 120.0)
        step = self.tool_calls.deadline_passed(call_id, text, running_reply=self._running_reply_id())
        await self._after_tool_step(step, call_id)

    async def _after_tool_step(self, step: ToolStep, call_id: str) -> None:
        """After a call's answer (not one kept for the end of its running reply): release the user's held
        words, save, and let the agent go on."""
        released = self._apply_tool_step(step)
        record = self.ledger.calls.get(call_id)
        if record is None or record.state is not CallState.ANSWERED:
            return
        for item_id, text in released:
            self.ledger.add_user(item_id, text)
            await self._send(TranscriptUser(text=text, item_id=item_id))
        await self._checkpoint()
        await self._kick()

    async def _run_hold_http(self, record: ToolCallRecord) -> None:
        spec = ToolSet.of(self.config.tools).find(record.name)
        runner = self.deps.http_tools
        if spec is None or spec.http is None or runner is None:
            outcome = HttpToolOutcome('{"error": "The tool is not available."}', True)
        else:
            self.tool_calls.http_running(record.call_id)
            outcome = await runner.run(
                spec.http, record.arguments, headers=http_headers(spec), timeout_seconds=spec.timeout_seconds
            )
        self.post(_HttpToolDone(record.call_id, outcome))

    async def _on_http_tool_done(self, item: _HttpToolDone) -> None:
        step = self.tool_calls.http_done(item.call_id, item.outcome.text, item.outcome.is_error)
        await self._after_tool_step(step, item.call_id)

    # --- end, resume, shutdown ----------------------------------------------------------------------
    async def _checkpoint(self) -> None:
        if self.session_id is None or self.phase is not Phase.READY:
            return
        await self._save_checkpoint(
            SessionCheckpoint(
                session_id=self.session_id,
                project_id=self.deps.project_id,
                config=self.config.model_dump(mode="json"),
                ledger=self.ledger.to_dict(),
                started_at=self._started_at,
                max_duration_seconds=self.deps.max_duration_seconds,
                audio_seconds=self._audio_seconds,
            )
        )

    async def _save_checkpoint(self, checkpoint: SessionCheckpoint) -> None:
        """A store outage is reported (``internal_error``) and the conversation carries on, resumable again
        from the next successful save; a session resumed elsewhere meanwhile ends here (no fork)."""
        try:
            await self.deps.checkpoints.save(checkpoint)
        except SessionOwnershipLost:
            logger.warning("session %s is owned by another connection; closing this one", self.session_id)
            with contextlib.suppress(SinkClosed):
                await self._send(
                    session_error(ErrorCode.INTERNAL_ERROR, "this session was resumed on another connection")
                )
            await self._close(CloseCode.POLICY_VIOLATION, ended_event=False, reason=ErrorCode.INTERNAL_ERROR)
        except CheckpointStoreUnavailable as exc:
            logger.warning("session %s: checkpoint not saved: %s", self.session_id, exc)
            with contextlib.suppress(SinkClosed):
                await self._send(
                    session_error(
                        ErrorCode.INTERNAL_ERROR,
                        "session storage is unavailable: the conversation continues, but cannot be "
                        "resumed after a disconnect until storage recovers",
                    )
                )

    def _ended_event(self) -> SessionEnded:
        return SessionEnded(
            session_duration_seconds=round(time.time() - self._started_at, 3),
            audio_duration_seconds=round(self._audio_seconds, 3),
        )

    async def _stop_activity(self) -> None:
        """The session ends: an unheard reply is dropped (the user's words stay in the conversation), a
        reply being heard keeps what was heard of it, without reply events."""
        for action in self.floor.session_ending():
            reply = self.reply
            if not isinstance(action, DropReply | InterruptReply) or reply is None:
                continue
            heard = reply.stop_audio() if isinstance(action, InterruptReply) else None
            await self._cancel_reply_task()
            if heard is not None:
                self.ledger.add_agent(reply.context.item_id, reply.reply_id, heard, interrupted=True)
                self.floor.reply_ended(reply.reply_id)
                self.turn_history.append(reply.context.timings)  # the turn happened, cut by the end
                record_turn(reply.context.timings)
            self._apply_tool_step(self.tool_calls.discard_reply(reply.reply_id))

    async def _end_normally(self) -> None:
        await self._stop_activity()
        if self.session_id is not None:
            await self.deps.checkpoints.end(self.session_id)
        await self._send(self._ended_event())
        await self._close(CloseCode.NORMAL, ended_event=False)

    async def _terminate(self, code: ErrorCode, message: str) -> None:
        await self._stop_activity()
        if self.session_id is not None:
            await self.deps.checkpoints.end(self.session_id)
        await self._send(session_error(code, message))
        await self._close(CLOSING_CODES.get(code, CloseCode.POLICY_VIOLATION), ended_event=True, reason=code)

    async def _close(self, code: int, *, ended_event: bool, reason: str = "") -> None:
        """``reason``: the code of the error that ends the session (HOSTED.md §4), empty otherwise."""
        if ended_event and self.phase is Phase.READY:
            if self.session_id is not None:
                await self.deps.checkpoints.end(self.session_id)
            with contextlib.suppress(SinkClosed):
                await self._send(self._ended_event())
        self.phase = Phase.ENDED
        with contextlib.suppress(SinkClosed):
            await self.sink.close(code, str(reason))

    async def _on_transport_closed(self) -> None:
        if self.phase is Phase.READY:
            await self._stop_activity()
            await self._checkpoint()
            if self.session_id is not None:
                await self.deps.checkpoints.detach(self.session_id)
        self.phase = Phase.ENDED

    def _spawn(self, work: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.phase is Phase.READY:
            # Left the loop without a transport notice (cancelled): keep the session resumable.
            with contextlib.suppress(Exception):
                await self._stop_activity()
                await self._checkpoint()
                if self.session_id is not None:
                    await self.deps.checkpoints.detach(self.session_id)
        self.phase = Phase.ENDED
        for deadline in (self._duration_timer, self._configure_timer):
            if deadline is not None:
                deadline.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._background)
        if self._reply_task is not None:
            tasks.append(self._reply_task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if isinstance(self.llm, PromptPrefilling) and self.session_id is not None:
            self.llm.forget_session(self.session_id)
        if self.turns is not None:
            await self.turns.aclose()
            # The turn-taker holds self.push: dropping it breaks the session's reference cycle, so an ended
            # session is freed at once instead of waiting for a full garbage collection.
            self.turns = None

    @property
    def task_count(self) -> int:
        """Live tasks owned by this session (for leak checks)."""
        count = sum(1 for t in self._background if not t.done())
        if self._reply_task is not None and not self._reply_task.done():
            count += 1
        if self.turns is not None:
            count += len(self.turns._tasks)
        return count


def _turn_detection_error(input_config: dict[str, Any]) -> ProtocolError | None:
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
