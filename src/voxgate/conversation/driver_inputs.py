"""What the session driver posts to its own queue besides the client's events: results of the work it
started (a reply's task, a turn-taking task, a hold-mode HTTP tool) and its timers. Each is handled on
the session loop, in order with the client's events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voxgate.conversation.http_tools import HttpToolOutcome
from voxgate.conversation.ledger import ToolCallRecord
from voxgate.conversation.reply import Reply, ReplyOutcome


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    reply: Reply
    task: asyncio.Task[ReplyOutcome]


@dataclass(frozen=True, slots=True)
class ReplyReady:
    """A tentative reply asks to be heard (its first audio, a tool call or its end is ready)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ToolCallProposed:
    """A running reply's LLM called a client tool."""

    record: ToolCallRecord


@dataclass(frozen=True, slots=True)
class ToolDeadline:
    call_id: str


@dataclass(frozen=True, slots=True)
class HttpToolDone:
    call_id: str
    outcome: HttpToolOutcome


@dataclass(frozen=True, slots=True)
class AudioGap:
    milliseconds: float
