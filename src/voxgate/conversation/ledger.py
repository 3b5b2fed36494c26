"""The conversation as the user heard it, plus the tool calls each reply made.

Items are appended in conversation order. Agent items hold only the text that was actually played
(trimmed on barge-in); that is exactly what the LLM sees on the next turn. Tool calls move through
``proposed -> sent -> answered | cancelled`` and stay bound to the reply that made them: the calls of an
interrupted reply are cancelled and never executed or answered later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from voxgate.speech.base import ChatMessage, ToolCallRequest


class CallState(StrEnum):
    PROPOSED = "proposed"
    SENT = "sent"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class ToolCallRecord:
    call_id: str
    name: str
    arguments: dict[str, Any]
    reply_id: str
    execution_mode: Literal["interactive", "hold"] = "interactive"
    server_side: bool = False
    state: CallState = CallState.PROPOSED
    result: str | None = None
    is_error: bool = False
    timed_out: bool = False
    """The answer is the timeout text: the client's own result came too late."""
    on_success: str | None = None
    on_error: str | None = None
    """The tool's ``response_instructions``: shown to the model right after a successful / failed result."""

    def response_instruction(self) -> str | None:
        """The instruction for the result this call got (``None``: unanswered, or none configured)."""
        if self.state is not CallState.ANSWERED:
            return None
        return self.on_error if self.is_error else self.on_success


@dataclass(slots=True)
class LedgerItem:
    kind: Literal["user", "agent", "system"]
    item_id: str
    text: str
    reply_id: str | None = None
    interrupted: bool = False
    call_ids: list[str] = field(default_factory=list)


class Ledger:
    def __init__(self) -> None:
        self.items: list[LedgerItem] = []
        self.calls: dict[str, ToolCallRecord] = {}

    # --- writes --------------------------------------------------------------------------------
    def add_user(self, item_id: str, text: str) -> LedgerItem:
        item = LedgerItem(kind="user", item_id=item_id, text=text)
        self.items.append(item)
        return item

    def retract_user(self, item_id: str) -> None:
        """Take back a user item (the user went on speaking: the same item will be added again, longer)."""
        self.items = [item for item in self.items if not (item.kind == "user" and item.item_id == item_id)]

    def add_system(self, item_id: str, text: str) -> LedgerItem:
        item = LedgerItem(kind="system", item_id=item_id, text=text)
        self.items.append(item)
        return item

    def open_agent(self, item_id: str, reply_id: str) -> None:
        """A reply started to be heard: its place in the conversation is here, before whatever the user
        says while it plays; its text is known when it ends (:meth:`add_agent`)."""
        self.items.append(LedgerItem(kind="agent", item_id=item_id, text="", reply_id=reply_id))

    def add_agent(self, item_id: str, reply_id: str, text: str, *, interrupted: bool) -> LedgerItem:
        """The reply ended with ``text`` heard: fill its item (opened when it started to be heard, else
        appended now)."""
        call_ids = [c.call_id for c in self.calls.values() if c.reply_id == reply_id]
        for item in self.items:
            if item.kind == "agent" and item.item_id == item_id:
                item.text, item.interrupted, item.call_ids = text, interrupted, call_ids
                return item
        item = LedgerItem(
            kind="agent",
            item_id=item_id,
            text=text,
            reply_id=reply_id,
            interrupted=interrupted,
            call_ids=call_ids,
        )
        self.items.append(item)
        return item

    def propose(self, record: ToolCallRecord) -> None:
        self.calls[record.call_id] = record

    def mark_sent(self, call_id: str) -> None:
        record = self.calls[call_id]
        if record.state is CallState.PROPOSED:
            record.state = CallState.SENT

    def answer(self, call_id: str, result: str, *, is_error: bool = False) -> None:
        record = self.calls[call_id]
        record.state = CallState.ANSWERED
        record.result = result
        record.is_error = is_error

    def cancel_reply_calls(self, reply_id: str) -> list[ToolCallRecord]:
        """Cancel every unanswered call of ``reply_id`` (the reply was interrupted)."""
        cancelled = []
        for record in self.calls.values():
            if record.reply_id == reply_id and record.state in (CallState.PROPOSED, CallState.SENT):
                record.state = CallState.CANCELLED
                cancelled.append(record)
        return cancelled

    def calls_of(self, reply_id: str) -> list[ToolCallRecord]:
        return [c for c in self.calls.values() if c.reply_id == reply_id]

    # --- reads -------------------------------------------------------------------------------------
    def to_messages(self, system_prompt: str, instructions: str | None = None) -> list[ChatMessage]:
        """The LLM's view: system prompt, then what was said and heard, with answered tool calls (each
        result followed by its tool's ``response_instructions`` as a system message), then the one-off
        ``instructions`` of this reply as a trailing system message: read last, and the system prompt
        with the tools (the model's cached prefix) stays the same. Cancelled calls are left out
        entirely; unanswered ones are not yet shown."""
        messages: list[ChatMessage] = (
            [ChatMessage(role="system", content=system_prompt)] if system_prompt else []
        )
        for item in self.items:
            if item.kind == "user":
                messages.append(ChatMessage(role="user", content=item.text))
            elif item.kind == "system":
                messages.append(ChatMessage(role="system", content=item.text))
            else:
                answered = [
                    self.calls[cid] for cid in item.call_ids if self.calls[cid].state is CallState.ANSWERED
                ]
                if not item.text and not answered:
                    continue
                messages.append(
                    ChatMessage(
                        role="assistant",
                        content=item.text,
                        tool_calls=[ToolCallRequest(c.call_id, c.name, c.arguments) for c in answered],
                    )
                )
                for call in answered:
                    messages.extend(result_messages(call))
        if instructions:
            messages.append(ChatMessage(role="system", content=instructions))
        return messages

    # --- checkpoints -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [asdict(item) for item in self.items],
            "calls": [{**asdict(c), "state": c.state.value} for c in self.calls.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        ledger = cls()
        ledger.items = [LedgerItem(**item) for item in data.get("items", [])]
        for raw in data.get("calls", []):
            record = ToolCallRecord(**{**raw, "state": CallState(raw["state"])})
            # A call still in flight when the connection dropped cannot be answered by a new one.
            if record.state in (CallState.PROPOSED, CallState.SENT):
                record.state = CallState.CANCELLED
            ledger.calls[record.call_id] = record
        return ledger


def result_messages(call: ToolCallRecord) -> list[ChatMessage]:
    """An answered call's result as the model sees it, with the tool's response instruction after it."""
    messages = [ChatMessage(role="tool", content=call.result or "", tool_call_id=call.call_id)]
    if (instruction := call.response_instruction()) is not None:
        messages.append(ChatMessage(role="system", content=instruction))
    return messages


def tool_error_text(message: str) -> str:
    """A tool result the model can recover from (it typically apologises)."""
    return json.dumps({"error": message})
