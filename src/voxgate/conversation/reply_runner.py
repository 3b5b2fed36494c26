"""A session's reply task: at most one at a time, started, stopped and read out by the session driver.

The runner builds each :class:`~voxgate.conversation.reply.Reply` from the core's
:class:`~voxgate.conversation.core_actions.LaunchReply`, runs it as a task whose end is posted to the
session's queue, and reports what a stopped or finished reply amounts to — the text the listener heard and
the last ``transcript.agent.delta`` — for the driver to hand to the core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voxgate.conversation import driver_inputs as inputs
from voxgate.conversation.core_actions import LaunchReply
from voxgate.conversation.dependencies import SessionDependencies, SinkClosed
from voxgate.conversation.ledger import Ledger, ToolCallRecord
from voxgate.conversation.reply import Reply, ReplyContext, ReplyOutcome
from voxgate.conversation.tools import ToolSet
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.events import ServerEvent
from voxgate.speech.base import LanguageModel, SpeechStack

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EndedReply:
    """What a reply amounts to once it stopped or finished."""

    text: str
    """What the listener heard (all of it for a completed reply)."""
    rest: ServerEvent | None
    """The last ``transcript.agent.delta``, if words remain unsent."""
    failure: str | None = None
    hold_http_calls: list[ToolCallRecord] | None = None


class ReplyRunner:
    def __init__(
        self,
        deps: SessionDependencies,
        post: Callable[[Any], None],
        send: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self._deps = deps
        self._post = post
        self._send = send
        self.reply: Reply | None = None
        self._task: asyncio.Task[ReplyOutcome] | None = None

    def is_current(self, reply_id: str) -> bool:
        return self.reply is not None and self.reply.reply_id == reply_id

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def launch(
        self,
        action: LaunchReply,
        *,
        config: Callable[[], SessionConfig],
        stack: SpeechStack,
        llm: LanguageModel,
        ledger: Ledger,
        session_key: str,
    ) -> None:
        """Start the reply ``action`` asks for. ``config``: the session's current configuration (its volume
        may change while the reply plays)."""
        start, current = action.start, config()
        context = ReplyContext(
            reply_id=start.reply_id,
            item_id=start.item_id,
            session_key=session_key,
            llm=llm,
            tts=stack.tts,
            voice_id=current.output.voice,
            output_encoding=current.output.format.encoding,
            volume=lambda: config().output.volume,
            tools=ToolSet.of(current.tools),
            ledger=ledger,
            send=self._send,
            propose_call=lambda record: self._post(inputs.ToolCallProposed(record)),
            http_runner=self._deps.http_tools,
            timings=action.timings,
            lead_ms=self._deps.reply_lead_ms,
            acknowledged_playout=self._deps.acknowledged_playout,
            tentative=start.tentative,
            text_output=current.output.type == "text",
            ask_release=lambda reply: self._post(inputs.ReplyReady(reply)),
        )
        if start.text is not None:
            reply = Reply(context, text=start.text)
        else:
            reply = Reply(context, messages=action.messages)
        self.reply = reply
        self._task = task = asyncio.get_running_loop().create_task(reply.run(), name=start.reply_id)
        task.add_done_callback(lambda t: self._post(inputs.ReplyFinished(reply, t)))

    def release(self, reply_id: str, go: bool) -> None:
        if self.reply is not None and self.reply.reply_id == reply_id:
            self.reply.release(go)

    def acknowledge_playout(self, reply_id: str, played_ms: float) -> None:
        if self.reply is not None and self.reply.reply_id == reply_id:
            self.reply.acknowledge_playout(played_ms)

    async def cancel(self) -> None:
        task, self.reply, self._task = self._task, None, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self, reply_id: str) -> EndedReply | None:
        """Stop the reply being heard: what the listener heard is what it said (the playout clock decides,
        even when the task already handed out all its audio)."""
        reply = self.reply
        if reply is None or reply.reply_id != reply_id:
            return None
        heard = reply.stop_audio()
        await self.cancel()
        return EndedReply(heard, reply.transcript.rest())

    def finished(self, item: inputs.ReplyFinished) -> EndedReply:
        """The current reply's task ended by itself: completed, or failed (it ends at what was heard)."""
        task, reply = item.task, item.reply
        self.reply, self._task = None, None
        failure: str | None = None
        if task.cancelled():
            failure = "cancelled"
        elif (exc := task.exception()) is not None:
            if isinstance(exc, SinkClosed):
                raise exc
            logger.error("reply %s failed", reply.reply_id, exc_info=exc)
            failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            heard = reply.stop_audio()
            return EndedReply(heard, reply.transcript.rest(), failure=failure)
        reply.transcript.settle_all()
        outcome = task.result()
        return EndedReply(outcome.text, reply.transcript.rest(), hold_http_calls=outcome.hold_http_calls)
