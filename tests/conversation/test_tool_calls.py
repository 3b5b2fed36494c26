"""Tool-call states as tables of transitions with a fake clock: no event loop, no sleeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from voxgate.conversation.ledger import CallState, Ledger, ToolCallRecord
from voxgate.conversation.tool_calls import (
    ClearDeadline,
    ResultRejected,
    RunHttpTool,
    SetDeadline,
    ToolCalls,
    ToolStep,
)

TIMEOUT_TEXT = '{"error": "timed out"}'


def client_call(call_id: str, reply_id: str = "reply_1", mode: str = "interactive") -> ToolCallRecord:
    return ToolCallRecord(call_id, "get_weather", {"city": "Paris"}, reply_id, execution_mode=mode)  # type: ignore[arg-type]


def http_call(call_id: str, reply_id: str = "reply_1") -> ToolCallRecord:
    return ToolCallRecord(call_id, "lookup", {}, reply_id, execution_mode="hold", server_side=True)


@dataclass(frozen=True)
class Step:
    call: Callable[[ToolCalls], ToolStep | None]
    expect: ToolStep | None = None
    states: dict[str, CallState] = field(default_factory=dict)
    hold: bool = False


def sent(record: ToolCallRecord, now: float = 0.0, timeout: float = 10.0) -> Callable[[ToolCalls], ToolStep]:
    return lambda calls: calls.client_call_sent(record, now, timeout)


def result(call_id: str, text: str = "sunny", running: str | None = None) -> Callable[[ToolCalls], ToolStep]:
    return lambda calls: calls.result(call_id, text, False, running_reply=running)


def deadline(call_id: str, running: str | None = None) -> Callable[[ToolCalls], ToolStep]:
    return lambda calls: calls.deadline_passed(call_id, TIMEOUT_TEXT, running_reply=running)


def reply_ended(
    reply_id: str = "reply_1", status: str = "completed", http: list[ToolCallRecord] | None = None
) -> Callable[[ToolCalls], ToolStep]:
    return lambda calls: calls.reply_ended(reply_id, status=status, hold_http_calls=http)  # type: ignore[arg-type]


SCENARIOS: dict[str, list[Step]] = {
    "a result after reply.done answers the call and the agent speaks again": [
        Step(sent(client_call("c1"), now=5.0), ToolStep([SetDeadline("c1", 15.0)]), {"c1": CallState.SENT}),
        Step(reply_ended(), ToolStep()),
        Step(result("c1"), ToolStep([ClearDeadline("c1")], reply_wanted=True), {"c1": CallState.ANSWERED}),
    ],
    "a result before reply.done waits for the reply's end": [
        Step(sent(client_call("c1")), ToolStep([SetDeadline("c1", 10.0)])),
        Step(result("c1", running="reply_1"), ToolStep([ClearDeadline("c1")]), {"c1": CallState.SENT}),
        Step(result("c1"), ToolStep(rejected=ResultRejected("the tool call was already answered"))),
        Step(reply_ended(), ToolStep(reply_wanted=True), {"c1": CallState.ANSWERED}),
    ],
    "a timeout answers with the timeout text; a late result is refused": [
        Step(sent(client_call("c1"))),
        Step(reply_ended()),
        Step(deadline("c1"), ToolStep(reply_wanted=True), {"c1": CallState.ANSWERED}),
        Step(result("c1"), ToolStep(rejected=ResultRejected("the tool call already timed out"))),
    ],
    "a timeout while the reply still runs is applied when it ends": [
        Step(sent(client_call("c1"))),
        Step(deadline("c1", running="reply_1"), ToolStep(), {"c1": CallState.SENT}),
        Step(result("c1"), ToolStep(rejected=ResultRejected("the tool call already timed out"))),
        Step(reply_ended(), ToolStep(reply_wanted=True), {"c1": CallState.ANSWERED}),
    ],
    "a deadline after the answer does nothing": [
        Step(sent(client_call("c1"))),
        Step(reply_ended()),
        Step(result("c1")),
        Step(deadline("c1"), ToolStep(), {"c1": CallState.ANSWERED}),
    ],
    "an interruption cancels the reply's calls and their deadlines": [
        Step(sent(client_call("c1"))),
        Step(reply_ended(status="interrupted"), ToolStep([ClearDeadline("c1")]), {"c1": CallState.CANCELLED}),
        Step(
            result("c1"),
            ToolStep(rejected=ResultRejected("the tool call was cancelled (its reply was interrupted)")),
        ),
        Step(deadline("c1"), ToolStep()),
    ],
    "a reply waits for every call it made": [
        Step(sent(client_call("c1"))),
        Step(sent(client_call("c2"))),
        Step(reply_ended()),
        Step(result("c2"), ToolStep([ClearDeadline("c2")])),
        Step(result("c1"), ToolStep([ClearDeadline("c1")], reply_wanted=True)),
    ],
    "hold mode: the user's words wait until the call is answered": [
        Step(sent(client_call("c1", mode="hold"))),
        Step(reply_ended(), ToolStep(), hold=True),
        Step(lambda calls: calls.hold_user_turn("u1", "Are you there?"), None, hold=True),
        Step(
            result("c1"),
            ToolStep(
                [ClearDeadline("c1")], reply_wanted=True, released_user_items=[("u1", "Are you there?")]
            ),
        ),
    ],
    "a hold-mode HTTP tool runs after the reply and the agent speaks with its result": [
        Step(lambda calls: calls.ledger.propose(http_call("h1"))),
        Step(reply_ended(http=[http_call("h1")]), ToolStep([RunHttpTool(http_call("h1"))]), hold=True),
        Step(lambda calls: calls.http_running("h1"), None, {"h1": CallState.SENT}, hold=True),
        Step(
            lambda calls: calls.http_done("h1", "{}", False),
            ToolStep(reply_wanted=True),
            {"h1": CallState.ANSWERED},
        ),
    ],
    "unknown and server-side call ids are refused": [
        Step(result("nope"), ToolStep(rejected=ResultRejected("unknown call_id 'nope'"))),
        Step(lambda calls: calls.ledger.propose(http_call("h1"))),
        Step(result("h1"), ToolStep(rejected=ResultRejected("unknown call_id 'h1'"))),
    ],
    "a dropped reply's calls never happened": [
        Step(sent(client_call("c1"))),
        Step(
            lambda calls: calls.discard_reply("reply_1"),
            ToolStep([ClearDeadline("c1")]),
            {"c1": CallState.CANCELLED},
        ),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_tool_call_transitions(name: str) -> None:
    calls = ToolCalls(Ledger())
    for index, step in enumerate(SCENARIOS[name]):
        outcome = step.call(calls)
        if step.expect is not None:
            assert outcome == step.expect, f"step {index}"
        for call_id, state in step.states.items():
            assert calls.ledger.calls[call_id].state is state, f"step {index}: {call_id}"
        assert calls.hold is step.hold, f"step {index}"


def test_session_end_clears_every_deadline() -> None:
    calls = ToolCalls(Ledger())
    calls.client_call_sent(client_call("c1"), 0.0, 5.0)
    calls.client_call_sent(client_call("c2"), 0.0, 5.0)
    assert calls.close() == ToolStep([ClearDeadline("c1"), ClearDeadline("c2")])
    assert calls.live_count == 0
