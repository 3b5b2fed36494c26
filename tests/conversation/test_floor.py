"""The floor state machine, as tables of transitions: no event loop, no clock, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import pytest

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


def sequential_ids() -> Callable[[str], str]:
    numbers = count(1)
    return lambda prefix: f"{prefix}_{next(numbers)}"


@dataclass(frozen=True)
class Step:
    call: Callable[[Floor], list[FloorAction] | bool | None]
    expect: list[FloorAction] | bool | None
    state: str


def turn(item: str, text: str) -> Callable[[Floor], list[FloorAction]]:
    return lambda f: f.user_turn_ended(item, text)


def speech(barge_in: bool = False, resumed: bool = False) -> Callable[[Floor], list[FloorAction]]:
    return lambda f: f.speech_started(barge_in=barge_in, resumed=resumed)


def ready(reply_id: str) -> Callable[[Floor], list[FloorAction]]:
    return lambda f: f.reply_ready(reply_id)


def ended(reply_id: str) -> Callable[[Floor], list[FloorAction]]:
    return lambda f: f.reply_ended(reply_id)


TENTATIVE_1 = StartReply("reply_1", "item_2", tentative=True)

SCENARIOS: dict[str, list[Step]] = {
    "a user turn is answered by a tentative reply announced when it goes out": [
        Step(turn("u1", "Hi there."), [AddUserTurn("u1", "Hi there."), TENTATIVE_1], "user_paused"),
        Step(
            ready("reply_1"),
            [
                SetAgentActive(True),
                AnnounceUserTurn("u1", "Hi there."),
                AnnounceReply("reply_1", "item_2"),
                ReleaseReply("reply_1", go=True),
            ],
            "agent_speaking",
        ),
        Step(ready("reply_1"), [ReleaseReply("reply_1", go=True)], "agent_speaking"),
        Step(ended("reply_1"), [SetAgentActive(False)], "idle"),
    ],
    "speech within the resume window continues the turn: the unheard reply leaves no trace": [
        Step(
            turn("u1", "No, I said Tuesday,"),
            [AddUserTurn("u1", "No, I said Tuesday,"), TENTATIVE_1],
            "user_paused",
        ),
        Step(lambda f: f.resume_turn(), True, "user_paused"),
        Step(ready("reply_1"), [ReleaseReply("reply_1", go=False)], "user_paused"),
        Step(speech(resumed=True), [DropReply("reply_1"), RetractUserTurn("u1")], "idle"),
        Step(
            turn("u1", "No, I said Tuesday, not Thursday."),
            [
                AddUserTurn("u1", "No, I said Tuesday, not Thursday."),
                StartReply("reply_3", "item_4", tentative=True),
            ],
            "user_paused",
        ),
    ],
    "a turn whose reply is heard cannot be resumed; a barge-in interrupts the reply": [
        Step(turn("u1", "Book a table."), [AddUserTurn("u1", "Book a table."), TENTATIVE_1], "user_paused"),
        Step(
            ready("reply_1"),
            [
                SetAgentActive(True),
                AnnounceUserTurn("u1", "Book a table."),
                AnnounceReply("reply_1", "item_2"),
                ReleaseReply("reply_1", go=True),
            ],
            "agent_speaking",
        ),
        Step(lambda f: f.resume_turn(), False, "agent_speaking"),
        Step(speech(barge_in=False), [], "agent_speaking"),
        Step(speech(barge_in=True), [InterruptReply("reply_1")], "agent_speaking"),
        Step(ended("reply_1"), [SetAgentActive(False)], "idle"),
    ],
    "speech after the resume window drops the unheard reply and announces the turn as it stands": [
        Step(turn("u1", "Thanks."), [AddUserTurn("u1", "Thanks."), TENTATIVE_1], "user_paused"),
        Step(speech(), [DropReply("reply_1"), AnnounceUserTurn("u1", "Thanks.")], "idle"),
        Step(ready("reply_1"), [ReleaseReply("reply_1", go=False)], "idle"),
    ],
    "a turn ending while the agent speaks is announced at once and answered after the reply": [
        Step(
            lambda f: f.greet("Hello!"),
            [
                SetAgentActive(True),
                AnnounceReply("reply_1", "item_2"),
                StartReply("reply_1", "item_2", tentative=False, text="Hello!"),
            ],
            "agent_speaking",
        ),
        Step(turn("u1", "Hi."), [AddUserTurn("u1", "Hi."), AnnounceUserTurn("u1", "Hi.")], "agent_speaking"),
        Step(ended("reply_1"), [SetAgentActive(False)], "idle"),
        Step(
            lambda f: f.kick(hold=False),
            [
                SetAgentActive(True),
                AnnounceReply("reply_3", "item_4"),
                StartReply("reply_3", "item_4", tentative=False),
            ],
            "agent_speaking",
        ),
    ],
    "overlapping speech that is no barge-in (a back-channel, or interrupt_response off) changes nothing": [
        Step(
            lambda f: f.greet("Hello!"),
            [
                SetAgentActive(True),
                AnnounceReply("reply_1", "item_2"),
                StartReply("reply_1", "item_2", tentative=False, text="Hello!"),
            ],
            "agent_speaking",
        ),
        Step(speech(barge_in=False), [], "agent_speaking"),
        Step(ended("reply_1"), [SetAgentActive(False)], "idle"),
        Step(lambda f: f.kick(hold=False), [], "idle"),
    ],
    "a hold-mode call keeps the agent quiet until it is answered": [
        Step(lambda f: f.want_reply(), None, "idle"),
        Step(lambda f: f.kick(hold=True), [], "idle"),
        Step(
            lambda f: f.kick(hold=False),
            [
                SetAgentActive(True),
                AnnounceReply("reply_1", "item_2"),
                StartReply("reply_1", "item_2", tentative=False),
            ],
            "agent_speaking",
        ),
    ],
    "reply.create during a tentative reply drops it, keeps the user's turn and speaks the instructions": [
        Step(turn("u1", "Hello?"), [AddUserTurn("u1", "Hello?"), TENTATIVE_1], "user_paused"),
        Step(
            lambda f: f.reply_requested("Say hi."),
            [
                DropReply("reply_1"),
                AnnounceUserTurn("u1", "Hello?"),
                SetAgentActive(True),
                AnnounceReply("reply_3", "item_4"),
                StartReply("reply_3", "item_4", tentative=False, instructions="Say hi."),
            ],
            "agent_speaking",
        ),
    ],
    "reply.create while the agent speaks interrupts it first": [
        Step(
            lambda f: f.greet("Hello!"),
            [
                SetAgentActive(True),
                AnnounceReply("reply_1", "item_2"),
                StartReply("reply_1", "item_2", tentative=False, text="Hello!"),
            ],
            "agent_speaking",
        ),
        Step(lambda f: f.interrupt(), [InterruptReply("reply_1")], "agent_speaking"),
        Step(ended("reply_1"), [SetAgentActive(False)], "idle"),
    ],
    "the session ending drops an unheard reply silently and interrupts a heard one": [
        Step(turn("u1", "Bye."), [AddUserTurn("u1", "Bye."), TENTATIVE_1], "user_paused"),
        Step(lambda f: f.session_ending(), [DropReply("reply_1")], "idle"),
        Step(
            lambda f: f.greet("Hi"),
            [
                SetAgentActive(True),
                AnnounceReply("reply_3", "item_4"),
                StartReply("reply_3", "item_4", tentative=False, text="Hi"),
            ],
            "agent_speaking",
        ),
        Step(lambda f: f.session_ending(), [InterruptReply("reply_3")], "agent_speaking"),
    ],
    "a late end of an old reply is ignored": [
        Step(ended("reply_9"), [], "idle"),
        Step(speech(resumed=True), [], "idle"),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_floor_transitions(name: str) -> None:
    floor = Floor(sequential_ids())
    for index, step in enumerate(SCENARIOS[name]):
        assert step.call(floor) == step.expect, f"step {index}"
        assert floor.state == step.state, f"step {index}"
