"""The model's view of the conversation: instructions as trailing system messages, tool results with
their tool's response instructions."""

from __future__ import annotations

import pytest

from voxgate.conversation.ledger import Ledger, ToolCallRecord
from voxgate.speech.base import ChatMessage


def conversation_with_call(*, is_error: bool = False, on_success: str | None = None) -> Ledger:
    ledger = Ledger()
    ledger.add_user("item_1", "Where is order AB12345?")
    ledger.propose(
        ToolCallRecord(
            "call_1", "lookup_order", {"order_id": "AB12345"}, "reply_1",
            on_success=on_success, on_error="Apologise and offer a human.",
        )
    )  # fmt: skip
    ledger.answer("call_1", '{"status": "shipped"}', is_error=is_error)
    ledger.add_agent("item_2", "reply_1", "", interrupted=False)
    return ledger


def test_one_off_instructions_come_last_and_leave_the_system_prompt_alone() -> None:
    ledger = Ledger()
    ledger.add_user("item_1", "Hi")
    messages = ledger.to_messages("You are Ava.", "Say exactly: banana.")
    assert messages == [
        ChatMessage("system", "You are Ava."),
        ChatMessage("user", "Hi"),
        ChatMessage("system", "Say exactly: banana."),
    ]
    assert ledger.to_messages("You are Ava.")[0] == messages[0]  # the cached prefix does not change


def test_instructions_without_a_system_prompt() -> None:
    assert Ledger().to_messages("", "Greet the caller.") == [ChatMessage("system", "Greet the caller.")]


@pytest.mark.parametrize(
    ("is_error", "on_success", "instruction"),
    [
        (False, "Read the status to the caller.", "Read the status to the caller."),
        (True, "Read the status to the caller.", "Apologise and offer a human."),
        (False, None, None),
    ],
)
def test_a_tool_result_is_followed_by_its_response_instruction(
    is_error: bool, on_success: str | None, instruction: str | None
) -> None:
    messages = conversation_with_call(is_error=is_error, on_success=on_success).to_messages("Sys")
    roles = [message.role for message in messages]
    assert roles[:4] == ["system", "user", "assistant", "tool"]
    if instruction is None:
        assert len(messages) == 4
    else:
        assert messages[4] == ChatMessage("system", instruction)


def test_response_instructions_survive_a_checkpoint() -> None:
    ledger = conversation_with_call(on_success="Read the status.")
    restored = Ledger.from_dict(ledger.to_dict())
    assert restored.to_messages("Sys") == ledger.to_messages("Sys")


def test_a_checkpoint_written_before_response_instructions_still_loads() -> None:
    data = conversation_with_call().to_dict()
    for call in data["calls"]:
        del call["on_success"], call["on_error"]
    assert [m.role for m in Ledger.from_dict(data).to_messages("Sys")] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
