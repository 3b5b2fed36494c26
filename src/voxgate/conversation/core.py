"""The conversation core: one session's protocol logic, with no I/O, no clock and no asyncio.

:class:`SessionCore` takes what happened — a client event, what turn-taking heard, a reply that is ready
to be heard or has ended, a tool call's answer or deadline, the end of the connection — and returns the
:data:`~voxgate.conversation.core_actions.CoreAction` values its driver (:mod:`voxgate.conversation.session`)
performs in order: events to send, replies to start or stop, timers, checkpoints. Results of those actions
come back as new inputs (a stopped reply reports what was heard with :meth:`SessionCore.reply_ended`).
Time comes in as ``now`` (monotonic seconds).

Decisions live in two smaller pure machines: :class:`~voxgate.conversation.floor.Floor` (who holds the
floor: barge-in, tentative replies, resumed turns) and :class:`~voxgate.conversation.tool_calls.ToolCalls`
(each tool call's state). The core owns the conversation (:class:`~voxgate.conversation.ledger.Ledger`)
and the effective configuration, and turns their decisions into the protocol's events.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from voxgate.conversation.core_actions import (
    Close,
    ConfigureTurns,
    CoreAction,
    CutReply,
    LaunchReply,
    Prefill,
    RecordTurn,
    SaveCheckpoint,
    Send,
    VerifyConfig,
)
from voxgate.conversation.floor import (
    AddUserTurn,
    AnnounceReply,
    AnnounceUserTurn,
    DropReply,
    Floor,
    FloorAction,
    IdFactory,
    InterruptReply,
    RetractUserTurn,
    StartReply,
)
from voxgate.conversation.ledger import CallState, Ledger, ToolCallRecord
from voxgate.conversation.notices import ConfigureDeadline, DurationExceeded, TransportClosed
from voxgate.conversation.timings import TurnTimings
from voxgate.conversation.tool_calls import ToolCalls, ToolStep
from voxgate.conversation.tools import ToolSet, timeout_result
from voxgate.conversation.turn_signals import (
    FinalTranscript,
    PartialTranscript,
    SpeculativeTranscript,
    SpeechStarted,
    SpeechStopped,
    TurnSignal,
)
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.errors import CLOSING_CODES, CloseCode, ErrorCode
from voxgate.protocol.events import (
    ConversationMessage,
    InputSpeechStarted,
    InputSpeechStopped,
    ProtocolError,
    ReplyCancel,
    ReplyCreate,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionEnd,
    SessionResume,
    SessionUpdate,
    SessionUpdated,
    ToolCall,
    ToolResult,
    TranscriptAgent,
    TranscriptUser,
    TranscriptUserDelta,
    session_error,
)
from voxgate.protocol.session_config import apply_update, parse_patch
from voxgate.protocol.session_view import session_config_view
from voxgate.speech.base import ChatMessage

logger = logging.getLogger(__name__)

DEFAULT_TOOL_TIMEOUT_SECONDS = 120.0


class Phase(Enum):
    CONNECTED = "connected"
    READY = "ready"
    ENDED = "ended"


Actions = list[CoreAction]


class SessionCore:
    def __init__(self, new_id: IdFactory) -> None:
        self._new_id = new_id
        self.phase = Phase.CONNECTED
        self.session_id: str | None = None
        self.config = SessionConfig()
        self.ledger = Ledger()
        self.floor = Floor(new_id)
        self.tool_calls = ToolCalls(self.ledger)
        self.audio_seconds = 0.0
        self._pending_timings: TurnTimings | None = None
        self._replies: dict[str, tuple[str, TurnTimings]] = {}
        """The running reply: reply_id -> (item_id, timings)."""

    @property
    def hold(self) -> bool:
        return self.tool_calls.hold

    @property
    def reply_id(self) -> str | None:
        return self.floor.reply_id

    # --- lifecycle ----------------------------------------------------------------------------------
    def ready(self, session_id: str, config: SessionConfig, ledger: Ledger | None = None) -> Actions:
        """The session is configured (or resumed with its conversation so far)."""
        self.phase = Phase.READY
        self.session_id = session_id
        self.config = config
        if ledger is not None:
            self.ledger = ledger
            self.tool_calls = ToolCalls(ledger)
        return [self._configure_turns(), SaveCheckpoint()]

    def greet(self, now: float) -> Actions:
        return self._floor(self.floor.greet(self.config.greeting), now) if self.config.greeting else []

    def error(self, error: ProtocolError) -> Actions:
        """Report ``error``; an error that closes the connection ends the session."""
        actions: Actions = [Send(session_error(error.code, error.message, error.param))]
        if error.close is not None:
            announce = self.phase is Phase.READY
            self.phase = Phase.ENDED
            actions.append(Close(error.close, reason=error.code.value, announce=announce))
        return actions

    def abandon(self, error: ProtocolError) -> Actions:
        """Another connection took the session over: close this one without ending the session."""
        self.phase = Phase.ENDED
        return [Close(error.close or CloseCode.POLICY_VIOLATION, reason=error.code.value, ending="abandoned")]

    def end(self) -> Actions:
        """``session.end``: the session ends for good."""
        actions = self._stop_activity()
        self.phase = Phase.ENDED
        return [*actions, Close(CloseCode.NORMAL, announce=True)]

    def terminate(self, code: ErrorCode, message: str) -> Actions:
        """The server ends the session (duration cap, configuration deadline)."""
        announce = self.phase is Phase.READY
        actions = self._stop_activity()
        self.phase = Phase.ENDED
        close = CLOSING_CODES.get(code, CloseCode.POLICY_VIOLATION)
        return [
            *actions,
            Send(session_error(code, message)),
            Close(close, reason=code.value, announce=announce),
        ]

    def transport_closed(self) -> Actions:
        """The client went away: a ready session stays resumable."""
        actions: Actions = []
        if self.phase is Phase.READY:
            actions = [*self._stop_activity(), SaveCheckpoint(), Close(CloseCode.NORMAL, ending="detached")]
        self.phase = Phase.ENDED
        return actions

    # --- client events ------------------------------------------------------------------------------
    def handle(self, event: Any, now: float) -> Actions:
        """A client event (but a connection's first ``session.update``/``session.resume``, which the
        driver sets up, and input audio, which goes through turn-taking: :meth:`turn_signals`), a notice
        from the transport (:class:`TransportClosed`, a :class:`ProtocolError` it found), or one of the
        session's deadlines (:class:`DurationExceeded`, :class:`ConfigureDeadline`)."""
        if isinstance(event, TransportClosed):
            return self.transport_closed()
        if isinstance(event, ProtocolError):
            return self.error(event)
        if isinstance(event, DurationExceeded):
            return self.terminate(ErrorCode.SESSION_EXPIRED, "the maximum session duration was reached")
        if isinstance(event, ConfigureDeadline):
            if self.phase is not Phase.CONNECTED:
                return []
            message = (
                f"no session.update or session.resume was accepted within {event.seconds:g} s of connecting"
            )
            return self.terminate(ErrorCode.SESSION_EXPIRED, message)
        if isinstance(event, SessionUpdate) and self.phase is Phase.READY:
            return self.update(event.session)
        if isinstance(event, SessionResume):
            message = "session.resume must be the first message of a connection"
            return self.error(ProtocolError(ErrorCode.INVALID_FORMAT, message, "type"))
        if self.phase is not Phase.READY:
            message = f"{getattr(event, 'type', type(event).__name__)} is not allowed before session.ready"
            return self.error(ProtocolError(ErrorCode.INVALID_FORMAT, message, "type"))
        if isinstance(event, SessionEnd):
            return self.end()
        return self._client_event(event, now)

    def _client_event(self, event: Any, now: float) -> Actions:
        if isinstance(event, ToolResult):
            return self._tool_result(event, now)
        if isinstance(event, ReplyCreate):
            return self._floor(self.floor.reply_requested(event.instructions), now)
        if isinstance(event, ReplyCancel):
            if self.floor.replying and event.reply_id in (None, self.floor.reply_id):
                return self._floor(self.floor.interrupt(), now)
            return []
        if isinstance(event, ConversationMessage):
            if event.role == "user" and self.config.input.type == "text":
                return self._user_turn(FinalTranscript(self._new_id("item"), event.content.strip(), now), now)
            if event.role == "user":  # context for the next reply (PROTOCOL.md §5.7), no reply of its own
                self.ledger.add_user(self._new_id("item"), event.content)
            else:
                self.ledger.add_system(self._new_id("item"), event.content)
            return []
        return []

    def audio_refusal(self) -> ProtocolError | None:
        """Input audio in a text-input session is refused (its user turns are ``conversation.message``s)."""
        if self.config.input.type != "text":
            return None
        message = "this session's input.type is text: send the user's words as conversation.message"
        return ProtocolError(ErrorCode.INVALID_VALUE, message, "type")

    def update(self, session: dict[str, Any]) -> Actions:
        """A later ``session.update``: merged into the configuration (fields not implemented are ignored)."""
        parsed = parse_patch(session)
        if isinstance(parsed, ProtocolError):
            return self.error(parsed)
        if parsed.ignored:
            logger.info("session.update: ignored unknown fields %s", ", ".join(parsed.ignored))
        result = apply_update(self.config, session, parsed.patch)
        actions: Actions = [a for error in result.errors for a in self.error(error)]
        if result.config is None:
            return actions
        return [*actions, VerifyConfig(result.config)]

    def config_verified(self, config: SessionConfig, error: ProtocolError | None) -> Actions:
        """The driver's answer to :class:`VerifyConfig`: apply the updated configuration, or refuse it."""
        if error is not None:
            return self.error(error)
        self.config = config
        return [self._configure_turns(), SaveCheckpoint(), Send(SessionUpdated(config=self.view()))]

    def view(self) -> dict[str, Any]:
        return session_config_view(self.config)

    # --- what turn-taking heard ---------------------------------------------------------------------
    def turn_signals(self, signals: list[TurnSignal], now: float) -> Actions:
        actions: Actions = []
        for signal in signals:
            if isinstance(signal, SpeechStarted):
                actions.append(Send(InputSpeechStarted()))
                started = self.floor.speech_started(barge_in=signal.barge_in, resumed=signal.resumed)
                actions.extend(self._floor(started, now))
            elif isinstance(signal, PartialTranscript):
                if not self.hold:
                    actions.append(Send(TranscriptUserDelta(text=signal.text, item_id=signal.item_id)))
                    # The last word of a partial is often cut short or revised: prefill the words before it.
                    words = signal.text.rsplit(maxsplit=1)[0] if " " in signal.text else ""
                    actions.extend(self._prefill_user_words(words, anticipate=False))
            elif isinstance(signal, SpeculativeTranscript):
                actions.extend(self._prefill_user_words(signal.text, anticipate=True))
            elif isinstance(signal, SpeechStopped):
                actions.append(Send(InputSpeechStopped()))
                self._pending_timings = TurnTimings(
                    session_id=self.session_id or "",
                    speech_end=signal.speech_end_monotonic,
                    end_of_turn=signal.decided_monotonic,
                )
            elif isinstance(signal, FinalTranscript):
                actions.extend(self._user_turn(signal, now))
        return actions

    def _user_turn(self, signal: FinalTranscript, now: float) -> Actions:
        if self._pending_timings is not None:
            self._pending_timings.stt_final = signal.decoded_monotonic
        if not signal.text:
            self._pending_timings = None
            return []
        if self.hold:
            self.tool_calls.hold_user_turn(signal.item_id, signal.text)
            return []
        return self._floor(self.floor.user_turn_ended(signal.item_id, signal.text), now)

    def _prefill_user_words(self, words: str, *, anticipate: bool) -> Actions:
        """Prefill the LLM with the user's words while they speak or pause (best-effort, see ``Prefill``)."""
        if not words or self.floor.replying or self.hold or self.phase is not Phase.READY:
            return []
        messages = self._conversation()
        messages.append(ChatMessage(role="user", content=words))
        return [Prefill(messages, speculative=True, anticipate=anticipate)]

    # --- replies ------------------------------------------------------------------------------------
    def reply_ready(self, reply_id: str, now: float) -> Actions:
        """A tentative reply asks to be heard."""
        return self._floor(self.floor.reply_ready(reply_id), now)

    def reply_finished_early(self, reply_id: str, now: float) -> tuple[Actions, bool]:
        """A reply's task ended. One that never asked to be heard (it failed before any output) is
        announced now, unless the user's turn is going on; returns whether the driver should report its
        end (:meth:`reply_ended`)."""
        if self.floor.reply_id != reply_id:
            return [], False  # already interrupted or dropped, and reported
        if self.floor.state != "user_paused":
            return [], True
        actions = self.reply_ready(reply_id, now)
        return actions, self.floor.state == "agent_speaking"

    def reply_ended(
        self,
        reply_id: str,
        text: str,
        *,
        interrupted: bool,
        rest: ServerEvent | None = None,
        failure: str | None = None,
        hold_http_calls: list[ToolCallRecord] | None = None,
        now: float,
    ) -> Actions:
        """A reply that was heard ended: completed, interrupted (``text`` is what was heard of it) or failed
        (``failure``; it ends interrupted). ``rest``: the last ``transcript.agent.delta``, if any."""
        if reply_id not in self._replies:
            return []
        item_id, timings = self._replies.pop(reply_id)
        actions: Actions = []
        if failure is not None:
            actions.append(Send(session_error(ErrorCode.INTERNAL_ERROR, f"the reply failed: {failure}")))
            interrupted = True
        self.ledger.add_agent(item_id, reply_id, text, interrupted=interrupted)
        if rest is not None:  # the deltas add up to the final text
            actions.append(Send(rest))
        actions.append(
            Send(TranscriptAgent(text=text, reply_id=reply_id, item_id=item_id, interrupted=interrupted))
        )
        status = "interrupted" if interrupted else "completed"
        actions.append(Send(ReplyDone(status=status, reply_id=reply_id)))
        actions.append(RecordTurn(timings))
        step = self.tool_calls.reply_ended(reply_id, status=status, hold_http_calls=hold_http_calls)
        actions.extend(self._tool_step(step))
        actions.extend(self.floor.reply_ended(reply_id))
        actions.append(SaveCheckpoint())
        actions.extend(self._kick(now))
        if not self.floor.replying:
            # Prefill the conversation so far (this reply as it was heard) while the user answers, so the
            # next reply prefills only the new user message.
            actions.append(Prefill(self._conversation()))
        return actions

    def reply_cut(self, reply_id: str, heard: str) -> Actions:
        """A reply being heard was stopped by the end of the session (:class:`CutReply`)."""
        if reply_id not in self._replies:
            return []
        item_id, timings = self._replies.pop(reply_id)
        self.ledger.add_agent(item_id, reply_id, heard, interrupted=True)
        self.floor.reply_ended(reply_id)
        return [RecordTurn(timings), *self.tool_calls.discard_reply(reply_id).actions]

    def _kick(self, now: float) -> Actions:
        if self.phase is not Phase.READY:
            return []
        return self._floor(self.floor.kick(hold=self.hold), now)

    def _floor(self, decided: list[FloorAction], now: float) -> Actions:
        """The floor's decisions, as actions of the session."""
        actions: Actions = []
        for action in decided:
            if isinstance(action, StartReply):
                actions.append(self._launch(action, now))
            elif isinstance(action, AnnounceUserTurn):
                actions.append(Send(TranscriptUser(text=action.text, item_id=action.item_id)))
            elif isinstance(action, AnnounceReply):
                self.ledger.open_agent(action.item_id, action.reply_id)
                actions.append(Send(ReplyStarted(reply_id=action.reply_id, item_id=action.item_id)))
            elif isinstance(action, AddUserTurn):
                self.ledger.add_user(action.item_id, action.text)
                actions.append(SaveCheckpoint())
            elif isinstance(action, RetractUserTurn):
                self.ledger.retract_user(action.item_id)
            elif isinstance(action, DropReply):
                self._replies.pop(action.reply_id, None)
                actions.append(action)
                actions.extend(self.tool_calls.discard_reply(action.reply_id).actions)
            else:  # ReleaseReply, InterruptReply, SetAgentActive: the driver's
                actions.append(action)
        return actions

    def _launch(self, start: StartReply, now: float) -> LaunchReply:
        timings = self._pending_timings or TurnTimings(session_id=self.session_id or "")
        self._pending_timings = None
        timings.reply_id = start.reply_id
        timings.reply_start = now
        self._replies[start.reply_id] = (start.item_id, timings)
        messages = None if start.text is not None else self._conversation(start.instructions)
        return LaunchReply(start, messages, timings)

    def _conversation(self, instructions: str | None = None) -> list[ChatMessage]:
        return self.ledger.to_messages(self.config.system_prompt, instructions)

    def _stop_activity(self) -> Actions:
        """The session ends: an unheard reply is dropped (the user's words stay in the conversation); a reply
        being heard keeps what was heard of it, without reply events."""
        actions: Actions = []
        for action in self.floor.session_ending():
            if isinstance(action, InterruptReply):
                actions.append(CutReply(action.reply_id))
            else:
                actions.extend(self._floor([action], 0.0))  # a DropReply: nothing is started
        return actions

    # --- tools --------------------------------------------------------------------------------------
    def tool_call_proposed(self, record: ToolCallRecord, now: float) -> Actions:
        """The running reply's LLM called a client tool: send ``tool.call``, start its deadline."""
        if self.floor.reply_id != record.reply_id:
            return []  # its reply was interrupted or dropped meanwhile: the call never happened
        step = self.tool_calls.client_call_sent(record, now, self._timeout_of(record.name))
        event = ToolCall(
            call_id=record.call_id, name=record.name, arguments=record.arguments, args=record.arguments
        )
        return [*step.actions, Send(event)]

    def _tool_result(self, event: ToolResult, now: float) -> Actions:
        step = self.tool_calls.result(
            event.call_id, event.result, event.is_error, running_reply=self.floor.reply_id
        )
        if step.rejected is not None:
            return self.error(ProtocolError(ErrorCode.INVALID_VALUE, step.rejected.problem, "call_id"))
        return self._after_tool_step(step, event.call_id, now)

    def deadline_passed(self, call_id: str, now: float) -> Actions:
        record = self.ledger.calls.get(call_id)
        if record is None:
            return []
        text = timeout_result(self._timeout_of(record.name))
        step = self.tool_calls.deadline_passed(call_id, text, running_reply=self.floor.reply_id)
        return self._after_tool_step(step, call_id, now)

    def http_tool_done(self, call_id: str, text: str, is_error: bool, now: float) -> Actions:
        return self._after_tool_step(self.tool_calls.http_done(call_id, text, is_error), call_id, now)

    def _after_tool_step(self, step: ToolStep, call_id: str, now: float) -> Actions:
        """After a call's answer (not one kept for the end of its running reply): release the user's held
        words, save, and let the agent go on."""
        actions = self._tool_step(step)
        record = self.ledger.calls.get(call_id)
        if record is None or record.state is not CallState.ANSWERED:
            return actions
        for item_id, text in step.released_user_items:
            self.ledger.add_user(item_id, text)
            actions.append(Send(TranscriptUser(text=text, item_id=item_id)))
        return [*actions, SaveCheckpoint(), *self._kick(now)]

    def _tool_step(self, step: ToolStep) -> Actions:
        if step.reply_wanted:
            self.floor.want_reply()
        return list(step.actions)

    def _timeout_of(self, tool_name: str) -> float:
        spec = ToolSet.of(self.config.tools).find(tool_name)
        return spec.timeout_seconds if spec is not None else DEFAULT_TOOL_TIMEOUT_SECONDS

    def _configure_turns(self) -> ConfigureTurns:
        return ConfigureTurns(self.config.input.turn_detection, tuple(self.config.input.keyterms))
