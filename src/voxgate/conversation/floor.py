"""Who holds the floor: the user, a reply being prepared, or the agent. A pure state machine.

Every decision about turns and replies that is not about audio is made here, in one place: when a
reply starts, when a tentative reply may go out, when the user's new speech continues their turn, drops a
reply nobody heard, or interrupts one that is playing, and when the agent speaks again. Turn-taking
(:mod:`voxgate.conversation.turns`) reports what it heard; replies report that they are ready to be heard
or have ended; :class:`Floor` answers with :data:`FloorAction` values the session's driver performs. No
I/O, no clock, no asyncio: a transition is a method call, and a test is a table of calls and actions.

States (:attr:`Floor.state`):

- ``idle``: nobody speaks and no reply runs;
- ``user_paused``: the user's turn ended and the reply to it is being prepared (*tentative*): nothing of it
  has been heard, so speech now continues the same turn (:meth:`Floor.resume_turn`) and the reply is
  dropped without a trace;
- ``agent_speaking``: a reply has gone out (its first audio, a tool call, or its end was released); speech
  that qualifies as a barge-in interrupts it, and what was heard of it is what the conversation keeps.

Whether the user is speaking is turn-taking's business (it holds overlapping speech until it qualifies as
a barge-in, and tells back-channels apart); the floor only needs the facts it reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FloorState = Literal["idle", "user_paused", "agent_speaking"]
IdFactory = Callable[[str], str]
"""``(prefix) -> a new unique id``: random ids in a session, sequential ones in tests."""


# --- actions --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartReply:
    """Start a reply: a fixed ``text`` (the greeting), or the LLM's answer to the conversation so far
    (with one-off ``instructions``). ``tentative``: it answers a user turn that may still go on, and
    nothing of it may go out until the floor releases it (:class:`ReleaseReply`)."""

    reply_id: str
    item_id: str
    tentative: bool
    text: str | None = None
    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseReply:
    """Answer a reply that asked to be heard: ``go`` false means the reply was dropped."""

    reply_id: str
    go: bool


@dataclass(frozen=True, slots=True)
class AnnounceUserTurn:
    """Send ``transcript.user`` for this turn (it is final: a reply to it is being heard)."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AnnounceReply:
    """Send ``reply.started``."""

    reply_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class AddUserTurn:
    """Append the user's turn to the conversation."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class RetractUserTurn:
    """Take the user's turn back out of the conversation: it goes on and will be added again, longer."""

    item_id: str


@dataclass(frozen=True, slots=True)
class DropReply:
    """Stop a reply nothing of which was heard: no reply events, its tool calls never happened."""

    reply_id: str


@dataclass(frozen=True, slots=True)
class InterruptReply:
    """Stop a reply that is being heard now; it ends ``interrupted`` with what was heard of it. The driver
    reports the end with :meth:`Floor.reply_ended`."""

    reply_id: str


@dataclass(frozen=True, slots=True)
class SetAgentActive:
    """Tell turn-taking whether the agent holds the floor (overlapping speech is then a possible barge-in)."""

    active: bool


FloorAction = (
    StartReply
    | ReleaseReply
    | AnnounceUserTurn
    | AnnounceReply
    | AddUserTurn
    | RetractUserTurn
    | DropReply
    | InterruptReply
    | SetAgentActive
)


@dataclass(slots=True)
class _Reply:
    reply_id: str
    item_id: str
    released: bool
    """Something of it went out (or may go out now): from here on it can only be interrupted."""


class Floor:
    def __init__(self, new_id: IdFactory) -> None:
        self._new_id = new_id
        self._reply: _Reply | None = None
        self._unannounced: tuple[str, str] | None = None
        """(item_id, text) of the user turn the tentative reply answers: announced when the reply goes out
        (or is dropped for another reason than the same turn going on)."""
        self._reply_wanted = False
        self._resumed_reply: str | None = None
        """The tentative reply given up by :meth:`resume_turn`, dropped at the next speech start."""

    # --- queries ----------------------------------------------------------------------------------
    @property
    def state(self) -> FloorState:
        if self._reply is None:
            return "idle"
        return "agent_speaking" if self._reply.released else "user_paused"

    @property
    def reply_id(self) -> str | None:
        return self._reply.reply_id if self._reply is not None else None

    @property
    def replying(self) -> bool:
        return self._reply is not None

    # --- the user -----------------------------------------------------------------------------------
    def resume_turn(self) -> bool:
        """Turn-taking asks, as speech starts just after a turn ended, whether it continues that turn:
        yes while the reply to it is still unheard. That reply is then given up (dropped when the speech
        start is reported with ``resumed``)."""
        reply = self._reply
        if reply is None or reply.released or self._unannounced is None:
            return False
        self._resumed_reply = reply.reply_id
        return True

    def speech_started(self, *, barge_in: bool, resumed: bool) -> list[FloorAction]:
        """The user started speaking (announced by turn-taking). ``resumed``: it continues the turn that
        just ended; ``barge_in``: it qualified as an interruption of the reply being heard."""
        reply = self._reply
        if resumed:
            if reply is None or reply.reply_id != self._resumed_reply:
                self._resumed_reply = None
                return []
            self._resumed_reply = None
            actions: list[FloorAction] = [DropReply(reply.reply_id)]
            self._reply = None
            if self._unannounced is not None:
                actions.append(RetractUserTurn(self._unannounced[0]))
                self._unannounced = None
            return actions
        if reply is not None and (barge_in or not reply.released):
            # A barge-in, or the user spoke again after the resume window while the reply was still unheard.
            return self.interrupt()
        return []

    def user_turn_ended(self, item_id: str, text: str) -> list[FloorAction]:
        """The user's turn ended with this final transcript (not empty; while a hold-mode tool runs the
        session keeps the words aside instead, see ``ToolCalls.hold_user_turn``)."""
        actions: list[FloorAction] = [AddUserTurn(item_id, text)]
        if self._reply is None:
            self._unannounced = (item_id, text)
            self._reply_wanted = False
            return [*actions, *self._start(tentative=True)]
        # The agent is speaking: the turn is final now, and answered once the reply has ended.
        self._reply_wanted = True
        return [*actions, AnnounceUserTurn(item_id, text)]

    # --- replies ------------------------------------------------------------------------------------
    def greet(self, text: str) -> list[FloorAction]:
        return self._start(tentative=False, text=text)

    def reply_requested(self, instructions: str | None) -> list[FloorAction]:
        """``reply.create``: interrupt (or drop) the current reply and start a new one."""
        actions = self.interrupt()
        return [*actions, *self._start(tentative=False, instructions=instructions)]

    def want_reply(self) -> None:
        """The agent should speak again when it can (tool results are in, held words were released)."""
        self._reply_wanted = True

    def kick(self, *, hold: bool) -> list[FloorAction]:
        """Start the reply the conversation is waiting for, if the floor is free."""
        if self._reply is None and self._reply_wanted and not hold:
            self._reply_wanted = False
            return self._start(tentative=False)
        return []

    def reply_ready(self, reply_id: str) -> list[FloorAction]:
        """A reply is about to go out (first audio, a tool call, or its end): release it or drop it."""
        reply = self._reply
        if reply is None or reply.reply_id != reply_id or self._resumed_reply == reply_id:
            return [ReleaseReply(reply_id, go=False)]
        if reply.released:
            return [ReleaseReply(reply_id, go=True)]
        reply.released = True
        actions: list[FloorAction] = [SetAgentActive(True)]
        actions.extend(self._announce_user())
        actions.append(AnnounceReply(reply.reply_id, reply.item_id))
        actions.append(ReleaseReply(reply_id, go=True))
        return actions

    def interrupt(self) -> list[FloorAction]:
        """Stop the current reply: drop it if it was never heard (the user's turn it answered is then
        announced as it stands), else interrupt it (:meth:`reply_ended` follows)."""
        reply = self._reply
        if reply is None:
            return []
        if not reply.released:
            self._reply = None
            self._resumed_reply = None
            return [DropReply(reply.reply_id), *self._announce_user()]
        return [InterruptReply(reply.reply_id)]

    def reply_ended(self, reply_id: str) -> list[FloorAction]:
        """A released reply ended (completed, failed or interrupted); the floor is free again."""
        if self._reply is None or self._reply.reply_id != reply_id:
            return []
        self._reply = None
        return [SetAgentActive(False)]

    def session_ending(self) -> list[FloorAction]:
        """The session ends: an unheard reply is dropped (the user's words stay in the conversation), a
        reply being heard is interrupted."""
        reply = self._reply
        if reply is None:
            return []
        if not reply.released:
            self._reply = None
            self._unannounced = None
            return [DropReply(reply.reply_id)]
        return [InterruptReply(reply.reply_id)]

    # --- internals ----------------------------------------------------------------------------------
    def _start(
        self, *, tentative: bool, text: str | None = None, instructions: str | None = None
    ) -> list[FloorAction]:
        reply = _Reply(self._new_id("reply"), self._new_id("item"), released=not tentative)
        self._reply = reply
        start = StartReply(reply.reply_id, reply.item_id, tentative, text=text, instructions=instructions)
        if tentative:
            return [start]
        return [SetAgentActive(True), AnnounceReply(reply.reply_id, reply.item_id), start]

    def _announce_user(self) -> list[FloorAction]:
        if self._unannounced is None:
            return []
        item_id, text = self._unannounced
        self._unannounced = None
        return [AnnounceUserTurn(item_id, text)]
