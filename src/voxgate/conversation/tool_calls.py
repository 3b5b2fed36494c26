"""The life of every tool call a session's replies make, in one object, without I/O or a clock.

The conversation :class:`~voxgate.conversation.ledger.Ledger` is the durable record (what the LLM sees,
what a checkpoint keeps); :class:`ToolCalls` adds what only a live session needs: each client call's
deadline, a result that arrived while its reply was still running (applied when the reply ends), which
calls hold the conversation (``execution_mode: "hold"``), the user's words held meanwhile, and which
ended replies wait for answers before the agent goes on.

Every method is a pure transition: time comes in as ``now`` (seconds on any monotonic clock) and what
the caller must do comes back as values — :class:`SetDeadline` / :class:`ClearDeadline` for the driver's
timers, :class:`RunHttpTool` for a hold-mode HTTP tool, and ``reply_wanted`` when every call a reply made
is answered and the agent should speak again.

A call's states: ``sent`` (the client has the ``tool.call``; a deadline runs) -> ``answered`` (a result, or
the timeout text when the deadline passed first) | ``cancelled`` (its reply was interrupted). A result for
a call whose reply is still running is kept aside (*early*) and becomes the answer when the reply ends, so
the LLM sees the call and its result in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from voxgate.conversation.ledger import CallState, Ledger, ToolCallRecord


@dataclass(frozen=True, slots=True)
class SetDeadline:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class ClearDeadline:
    call_id: str


@dataclass(frozen=True, slots=True)
class RunHttpTool:
    """Run this hold-mode HTTP tool now; report its outcome with :meth:`ToolCalls.http_done`."""

    record: ToolCallRecord


ToolAction = SetDeadline | ClearDeadline | RunHttpTool


@dataclass(frozen=True, slots=True)
class ResultRejected:
    """A ``tool.result`` the session refuses (``invalid_value`` on ``call_id``)."""

    problem: str


@dataclass(slots=True)
class ToolStep:
    """What a transition asks of the caller."""

    actions: list[ToolAction] = field(default_factory=list)
    reply_wanted: bool = False
    """Every call an ended reply made is answered (or a held conversation resumes): reply again."""
    released_user_items: list[tuple[str, str]] = field(default_factory=list)
    """User turns held while a hold-mode call ran, now part of the conversation (item_id, text)."""
    rejected: ResultRejected | None = None


@dataclass(slots=True)
class _LiveCall:
    reply_id: str
    hold: bool = False
    deadline: bool = False
    """A deadline timer runs for it."""
    early: tuple[str, bool] | None = None
    """(result, is_error) received while the reply that made the call was still running."""


class ToolCalls:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._live: dict[str, _LiveCall] = {}
        self._awaiting: dict[str, set[str]] = {}
        """Ended replies (by id) -> their client calls still unanswered."""
        self._held_user_items: list[tuple[str, str]] = []

    # --- queries ----------------------------------------------------------------------------------
    @property
    def hold(self) -> bool:
        """A hold-mode call is unanswered: the agent waits for it, the user's words are held."""
        return any(call.hold for call in self._live.values())

    @property
    def live_count(self) -> int:
        return len(self._live)

    # --- transitions ------------------------------------------------------------------------------
    def client_call_sent(self, record: ToolCallRecord, now: float, timeout_seconds: float) -> ToolStep:
        """The client was sent ``tool.call`` for ``record`` (a new call of a running reply)."""
        self.ledger.propose(record)
        self.ledger.mark_sent(record.call_id)
        self._live[record.call_id] = _LiveCall(record.reply_id, deadline=True)
        return ToolStep([SetDeadline(record.call_id, now + timeout_seconds)])

    def result(self, call_id: str, result: str, is_error: bool, *, running_reply: str | None) -> ToolStep:
        """A ``tool.result`` from the client. ``running_reply``: the id of the reply still running, if any."""
        record = self.ledger.calls.get(call_id)
        live = self._live.get(call_id)
        problem: str | None = None
        if record is None or record.server_side:
            problem = f"unknown call_id '{call_id[:128]}'"
        elif record.timed_out:
            problem = "the tool call already timed out"
        elif record.state is CallState.ANSWERED or (live is not None and live.early is not None):
            problem = "the tool call was already answered"
        elif record.state is CallState.CANCELLED:
            problem = "the tool call was cancelled (its reply was interrupted)"
        if problem is not None:
            return ToolStep(rejected=ResultRejected(problem))
        assert record is not None
        if live is not None and record.reply_id == running_reply:
            live.early = (result, is_error)
            return ToolStep(self._clear_deadline(live, call_id))
        step = self._answer(call_id, result, is_error)
        self._release_held(step)
        return step

    def deadline_passed(self, call_id: str, timeout_text: str, *, running_reply: str | None) -> ToolStep:
        """The call's deadline fired: unless answered meanwhile, its answer is ``timeout_text``."""
        record = self.ledger.calls.get(call_id)
        live = self._live.get(call_id)
        if record is None or live is None or record.state is not CallState.SENT or live.early is not None:
            return ToolStep()
        record.timed_out = True
        live.deadline = False
        if record.reply_id == running_reply:
            live.early = (timeout_text, True)
            return ToolStep()
        step = self._answer(call_id, timeout_text, True)
        self._release_held(step)
        return step

    def reply_ended(
        self,
        reply_id: str,
        *,
        status: Literal["completed", "interrupted"],
        hold_http_calls: list[ToolCallRecord] | None = None,
    ) -> ToolStep:
        """The reply ``reply_id`` ended. An interrupted reply's unanswered calls are cancelled; a completed
        one's client calls are awaited (early results applied now), hold-mode calls hold the conversation,
        and its hold-mode HTTP calls are run."""
        step = ToolStep()
        calls = self.ledger.calls_of(reply_id)
        if status == "interrupted":
            for record in self.ledger.cancel_reply_calls(reply_id):
                step.actions.extend(self._forget(record.call_id))
            return step
        waiting = {c.call_id for c in calls if not c.server_side and c.state is CallState.SENT}
        for record in calls:
            if record.execution_mode == "hold" and record.state is not CallState.ANSWERED:
                live = self._live.setdefault(record.call_id, _LiveCall(reply_id))
                live.hold = True
        if waiting:
            self._awaiting[reply_id] = waiting
        for record in hold_http_calls or []:
            step.actions.append(RunHttpTool(record))
        for call_id in sorted(waiting):
            live = self._live.get(call_id)
            if live is not None and live.early is not None:
                result, is_error = live.early
                self._merge(step, self._answer(call_id, result, is_error))
        return step

    def discard_reply(self, reply_id: str) -> ToolStep:
        """A reply dropped before anything of it went out: its calls never happened."""
        step = ToolStep()
        for record in self.ledger.cancel_reply_calls(reply_id):
            step.actions.extend(self._forget(record.call_id))
        return step

    def http_running(self, call_id: str) -> None:
        self.ledger.mark_sent(call_id)

    def http_done(self, call_id: str, text: str, is_error: bool) -> ToolStep:
        """A hold-mode HTTP tool finished; the agent speaks again with its result."""
        record = self.ledger.calls.get(call_id)
        if record is None or record.state is CallState.CANCELLED:
            return ToolStep()
        step = self._answer(call_id, text, is_error)
        step.reply_wanted = True
        self._release_held(step)
        return step

    def hold_user_turn(self, item_id: str, text: str) -> None:
        """The user spoke while a hold-mode call runs: their words wait until it is answered."""
        self._held_user_items.append((item_id, text))

    def close(self) -> ToolStep:
        """The session ends: every deadline goes."""
        step = ToolStep([ClearDeadline(call_id) for call_id, live in self._live.items() if live.deadline])
        self._live.clear()
        self._awaiting.clear()
        return step

    # --- internals --------------------------------------------------------------------------------
    def _answer(self, call_id: str, result: str, is_error: bool) -> ToolStep:
        self.ledger.answer(call_id, result, is_error=is_error)
        step = ToolStep(self._forget(call_id))
        for reply_id, waiting in list(self._awaiting.items()):
            waiting.discard(call_id)
            if not waiting:
                del self._awaiting[reply_id]
                step.reply_wanted = True
        return step

    def _forget(self, call_id: str) -> list[ToolAction]:
        live = self._live.pop(call_id, None)
        return self._clear_deadline(live, call_id) if live is not None else []

    @staticmethod
    def _clear_deadline(live: _LiveCall, call_id: str) -> list[ToolAction]:
        if not live.deadline:
            return []
        live.deadline = False
        return [ClearDeadline(call_id)]

    def _release_held(self, step: ToolStep) -> None:
        if not self.hold and self._held_user_items:
            step.released_user_items = list(self._held_user_items)
            self._held_user_items.clear()
            step.reply_wanted = True

    @staticmethod
    def _merge(into: ToolStep, step: ToolStep) -> None:
        into.actions.extend(step.actions)
        into.reply_wanted = into.reply_wanted or step.reply_wanted
