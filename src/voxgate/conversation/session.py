"""The session driver: the asyncio side of one conversation.

A :class:`Session` owns one queue of inputs and handles them in order: the client's events (pushed by the
transport), and the results of the work it started itself (:mod:`voxgate.conversation.driver_inputs`).
Protocol logic lives in the pure :class:`~voxgate.conversation.core.SessionCore`; the driver feeds it and
performs what it returns (:mod:`voxgate.conversation.core_actions`): it owns the sink, the timers, the
reply tasks, turn-taking's model tasks, checkpoint I/O and the LLM prompt cache. Reply audio goes to the
sink from the reply's own task; every other event is sent from the session loop, in order.

Phases: ``connected`` (no configuration yet) -> ``ready`` -> ``ended``. Every task the session starts is
cancelled and awaited when :meth:`Session.run` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from voxgate.conversation import driver_inputs as inputs
from voxgate.conversation.audio_intake import GAP_CHECK_SECONDS, AudioIntake
from voxgate.conversation.checkpointing import save_checkpoint
from voxgate.conversation.core import Phase, SessionCore
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
from voxgate.conversation.dependencies import EventSink, SessionDependencies, SinkClosed
from voxgate.conversation.floor import DropReply, InterruptReply, ReleaseReply, SetAgentActive
from voxgate.conversation.http_tools import run_http_tool
from voxgate.conversation.input_queue import SessionInputQueue
from voxgate.conversation.input_rate import InputRateBudget
from voxgate.conversation.ledger import Ledger, ToolCallRecord
from voxgate.conversation.notices import ConfigureDeadline, DurationExceeded, PlayoutAcknowledged
from voxgate.conversation.prefill import Prefiller
from voxgate.conversation.prompt_limits import prompt_budget_error
from voxgate.conversation.reply_runner import ReplyRunner
from voxgate.conversation.session_setup import Prepared, set_up
from voxgate.conversation.session_timers import SessionTimers
from voxgate.conversation.tool_calls import ClearDeadline, RunHttpTool, SetDeadline
from voxgate.conversation.tools import ToolSet
from voxgate.conversation.turns import TurnTaker, TurnTaskResult
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.errors import ErrorCode
from voxgate.protocol.events import (
    InputAudio,
    ProtocolError,
    ServerEvent,
    SessionEnded,
    SessionReady,
    SessionResume,
    SessionUpdate,
    session_error,
)

logger = logging.getLogger(__name__)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Session:
    def __init__(self, deps: SessionDependencies, sink: EventSink) -> None:
        self.deps = deps
        self.sink = sink
        self.queue = SessionInputQueue()
        self.core = SessionCore(_new_id)
        self.intake = AudioIntake(
            deps.input_rate_burst_seconds or deps.settings.input_rate_burst_seconds, time.monotonic()
        )
        self.replies = ReplyRunner(deps, self.post, self._send)
        self._models: Prepared | None = None
        self.turns: TurnTaker | None = None
        self._prefiller: Prefiller | None = None
        self.timers = SessionTimers(self.post)
        """Tool-call deadlines by call id, and the session's own ("duration", "configure")."""
        self._background: set[asyncio.Task[Any]] = set()
        self._started_at = time.time()
        self._cap_from = self._started_at
        """When the duration cap started counting: this connection's start, or a resumed session's."""
        self._closed = False

    # --- public surface -----------------------------------------------------------------------------
    def push(self, item: Any) -> None:
        """Queue one input: a parsed client event, a ProtocolError or a notice from the transport
        (:mod:`~voxgate.conversation.notices`), or the driver's own (``driver_inputs``). Never blocks."""
        if isinstance(item, InputAudio):
            self.intake.arrived(time.monotonic())
        self.queue.put_nowait(item)

    post = push

    @property
    def phase(self) -> Phase:
        return self.core.phase

    @property
    def session_id(self) -> str | None:
        return self.core.session_id

    @property
    def config(self) -> SessionConfig:
        return self.core.config

    @property
    def input_rate(self) -> InputRateBudget:
        return self.intake.input_rate

    @input_rate.setter
    def input_rate(self, budget: InputRateBudget) -> None:
        self.intake.input_rate = budget

    async def run(self) -> None:
        seconds = self.deps.settings.configure_timeout_seconds
        self.timers.set("configure", seconds, ConfigureDeadline(seconds))
        self._arm_duration_cap()
        try:
            while self.core.phase is not Phase.ENDED:
                item = await self.queue.get()
                try:
                    await self._handle(item)
                except SinkClosed:
                    await self._perform(self.core.transport_closed())
                except Exception:
                    logger.exception("session %s failed handling %s", self.session_id, type(item).__name__)
                    error = ProtocolError(ErrorCode.INTERNAL_ERROR, "internal error handling the message")
                    with contextlib.suppress(SinkClosed):
                        await self._perform(self.core.error(error))
                if (
                    isinstance(item, InputAudio)
                    and (lag := self.intake.processed(time.monotonic())) is not None
                ):
                    self.deps.telemetry.input_frame_processed(lag)
        finally:
            await self._shutdown()

    # --- dispatch -----------------------------------------------------------------------------------
    async def _handle(self, item: Any) -> None:
        core, now = self.core, time.monotonic()
        if isinstance(item, InputAudio) and core.phase is Phase.READY:
            await self._on_audio(item, now)
        elif isinstance(item, TurnTaskResult):
            if self.turns is not None:
                await self._perform(core.turn_signals(self.turns.on_result(item), now))
        elif isinstance(item, inputs.ReplyReady):
            if item.reply is self.replies.reply:
                await self._perform(core.reply_ready(item.reply.reply_id, now))
            else:
                item.reply.release(False)
        elif isinstance(item, inputs.ReplyFinished):
            await self._on_reply_finished(item, now)
        elif isinstance(item, inputs.ToolCallProposed):
            await self._perform(core.tool_call_proposed(item.record, now))
        elif isinstance(item, PlayoutAcknowledged):
            self.replies.acknowledge_playout(item.reply_id, item.played_ms)
        elif isinstance(item, inputs.AudioGap):
            if self.turns is not None and core.phase is Phase.READY:
                await self._perform(core.turn_signals(self.turns.on_gap(item.milliseconds), now))
        elif isinstance(item, inputs.ToolDeadline):
            await self._perform(core.deadline_passed(item.call_id, now))
        elif isinstance(item, inputs.HttpToolDone):
            await self._perform(
                core.http_tool_done(item.call_id, item.outcome.text, item.outcome.is_error, now)
            )
        elif isinstance(item, SessionUpdate | SessionResume) and core.phase is Phase.CONNECTED:
            await self._set_up(item)
        else:  # the client's other events, the transport's notices, the session's own deadlines
            await self._perform(core.handle(item, now))

    async def _perform(self, actions: list[CoreAction]) -> None:
        """Carry out what the core decided, in order; results that matter to it go back in as inputs."""
        for action in actions:
            if isinstance(action, Send):
                await self._send(action.event)
            elif isinstance(action, LaunchReply):
                assert self._models is not None
                self.replies.launch(
                    action,
                    config=lambda: self.core.config,
                    stack=self._models.stack,
                    llm=self._models.llm,
                    ledger=self.core.ledger,
                    session_key=self.core.session_id or action.start.reply_id,
                )
            elif isinstance(action, ReleaseReply):
                self.replies.release(action.reply_id, action.go)
            elif isinstance(action, DropReply):
                if self.replies.is_current(action.reply_id):
                    await self.replies.cancel()
            elif isinstance(action, InterruptReply | CutReply):
                if (ended := await self.replies.stop(action.reply_id)) is None:
                    continue
                if isinstance(action, CutReply):
                    await self._perform(self.core.reply_cut(action.reply_id, ended.text))
                else:
                    now = time.monotonic()
                    reported = self.core.reply_ended(
                        action.reply_id, ended.text, interrupted=True, rest=ended.rest, now=now
                    )
                    await self._perform(reported)
            elif isinstance(action, SetAgentActive):
                if self.turns is not None:
                    signals = self.turns.set_agent_active(action.active)
                    await self._perform(self.core.turn_signals(signals, time.monotonic()))
            elif isinstance(action, VerifyConfig):
                assert self._models is not None
                error = await prompt_budget_error(self.deps.settings, action.config, self._models.llm)
                await self._perform(self.core.config_verified(action.config, error))
            elif isinstance(action, ConfigureTurns):
                if self.turns is not None:
                    self.turns.configure(action.turn_detection, action.keyterms)
            elif isinstance(action, SetDeadline):
                delay = action.at - time.monotonic()
                self.timers.set(action.call_id, delay, inputs.ToolDeadline(action.call_id))
            elif isinstance(action, ClearDeadline):
                self.timers.clear(action.call_id)
            elif isinstance(action, RunHttpTool):
                self._spawn(self._run_hold_http(action.record), f"http-{action.record.call_id}")
            elif isinstance(action, SaveCheckpoint):
                await self._save_checkpoint()
            elif isinstance(action, Prefill):
                if self._prefiller is not None:
                    self._prefiller.prefill(
                        action.messages, speculative=action.speculative, anticipate=action.anticipate
                    )
            elif isinstance(action, RecordTurn):
                self.deps.telemetry.turn_finished(action.timings)
            elif isinstance(action, Close):
                await self._close(action)
                return

    async def _send(self, event: ServerEvent) -> None:
        await self.sink.send(event.stamped(time.time() - self._started_at))

    # --- getting ready ------------------------------------------------------------------------------
    async def _set_up(self, first: SessionUpdate | SessionResume) -> None:
        result = await set_up(self.deps, first, _new_id("sess"))
        if isinstance(result, ProtocolError):
            await self._perform(self.core.error(result))
            return
        ledger = None
        if (checkpoint := result.checkpoint) is not None:
            self._started_at = self._cap_from = checkpoint.started_at
            self.intake.seconds = checkpoint.audio_seconds
            deps = self.deps
            deps.max_duration_seconds = min(deps.max_duration_seconds, checkpoint.max_duration_seconds)
            ledger = Ledger.from_dict(checkpoint.ledger)
        else:
            self._started_at = time.time()
        await self._become_ready(result.prepared, result.session_id, ledger)
        if checkpoint is None:
            await self._perform(self.core.greet(time.monotonic()))

    async def _become_ready(self, prepared: Prepared, session_id: str, ledger: Ledger | None = None) -> None:
        self.timers.clear("configure")
        self._models = prepared
        self.turns = TurnTaker.for_stack(
            prepared.stack,
            post=self.post,
            new_item_id=lambda: _new_id("item"),
            tuning=self.deps.turn_tuning,
            may_resume=self.core.floor.resume_turn,
        )
        self._prefiller = Prefiller(
            prepared.llm,
            session_id,
            lambda: ToolSet.of(self.core.config.tools).schemas(),
            lambda: self.replies.reply is not None,
            self._spawn,
        )
        self._arm_duration_cap()  # again: a resumed session's cap may be lower
        self._spawn(self._watch_gaps(), "gap-watch")
        await self._perform(self.core.ready(session_id, prepared.config, ledger))
        expires_at = int(self._cap_from + self.deps.max_duration_seconds)
        grace = int(self.deps.settings.resume_grace_seconds)  # the token is usable after the last drop too
        token = self.deps.resume_tokens.issue(session_id, self.deps.project_id, expires_at + grace)
        ready = SessionReady(
            session_id=session_id, resume_token=token, expires_at=expires_at, config=self.core.view()
        )
        await self._send(ready)
        await self._perform([Prefill(self.core.ledger.to_messages(self.core.config.system_prompt))])

    def _arm_duration_cap(self) -> None:
        remaining = self.deps.max_duration_seconds - (time.time() - self._cap_from)
        self.timers.set("duration", remaining, DurationExceeded())

    # --- audio in -----------------------------------------------------------------------------------
    async def _on_audio(self, event: InputAudio, now: float) -> None:
        if (refusal := self.core.audio_refusal()) is not None:
            await self._perform(self.core.error(refusal))
            return
        intake = self.intake.accept(event.audio, self.core.config.input.format.encoding, now)
        if intake.error is not None:
            await self._perform(self.core.error(intake.error))
        elif intake.audio is not None and intake.audio.size and self.turns is not None:
            await self._perform(self.core.turn_signals(self.turns.feed(intake.audio), now))

    async def _watch_gaps(self) -> None:
        while True:
            due = time.monotonic() + GAP_CHECK_SECONDS
            await asyncio.sleep(GAP_CHECK_SECONDS)
            now = time.monotonic()
            if self.turns is not None and self.turns.in_utterance:
                if (gap := self.intake.gap(now, now - due)) is not None:
                    self.post(inputs.AudioGap(gap))

    # --- replies ------------------------------------------------------------------------------------
    async def _on_reply_finished(self, item: inputs.ReplyFinished, now: float) -> None:
        if self.replies.reply is not item.reply:
            return  # already interrupted or dropped, and reported
        actions, report = self.core.reply_finished_early(item.reply.reply_id, now)
        await self._perform(actions)
        if report:
            ended = self.replies.finished(item)
            reply_id = item.reply.reply_id
            await self._perform(
                self.core.reply_ended(
                    reply_id,
                    ended.text,
                    interrupted=False,
                    rest=ended.rest,
                    failure=ended.failure,
                    hold_http_calls=ended.hold_http_calls,
                    now=now,
                )
            )

    # --- tools --------------------------------------------------------------------------------------
    async def _run_hold_http(self, record: ToolCallRecord) -> None:
        self.core.tool_calls.http_running(record.call_id)
        tools = ToolSet.of(self.core.config.tools)
        self.post(
            inputs.HttpToolDone(record.call_id, await run_http_tool(self.deps.http_tools, tools, record))
        )

    # --- checkpoints, the end -----------------------------------------------------------------------
    async def _save_checkpoint(self) -> None:
        error = await save_checkpoint(
            self.deps.checkpoints,
            self.core,
            project_id=self.deps.project_id,
            started_at=self._started_at,
            max_duration_seconds=self.deps.max_duration_seconds,
            audio_seconds=self.intake.seconds,
        )
        if error is not None and error.close is not None:  # resumed elsewhere: this connection ends
            await self._perform([Send(session_error(error.code, error.message)), *self.core.abandon(error)])
        elif error is not None:
            with contextlib.suppress(SinkClosed):
                await self._send(session_error(error.code, error.message))

    async def _close(self, action: Close) -> None:
        session_id = self.core.session_id
        if action.ending == "detached":
            if session_id is not None:
                await self.deps.checkpoints.detach(session_id)
            return
        if action.ending == "ended" and session_id is not None:
            await self.deps.checkpoints.end(session_id)
        if action.announce:
            ended = SessionEnded(
                session_duration_seconds=round(time.time() - self._started_at, 3),
                audio_duration_seconds=round(self.intake.seconds, 3),
            )
            with contextlib.suppress(SinkClosed):
                await self._send(ended)
        with contextlib.suppress(SinkClosed):
            await self.sink.close(action.code, action.reason)

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _shutdown(self) -> None:
        if self._closed:
            return
        if self.core.phase is Phase.READY:
            # Left the loop without a transport notice (cancelled): keep the session resumable.
            with contextlib.suppress(Exception):
                await self._perform(self.core.transport_closed())
        self._closed = True
        self.timers.clear_all()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, self.replies.cancel(), return_exceptions=True)
        if self._prefiller is not None:
            self._prefiller.forget()
        if self.turns is not None:
            await self.turns.aclose()
            # The turn-taker holds self.push: dropping it breaks the session's reference cycle, so an ended
            # session is freed at once instead of waiting for a full garbage collection.
            self.turns = None

    @property
    def task_count(self) -> int:
        """Live tasks owned by this session (for leak checks)."""
        count = sum(1 for t in self._background if not t.done())
        count += self.replies.running
        return count + (self.turns.task_count if self.turns is not None else 0)
