"""One agent reply: a cancellable pipeline LLM -> sentence splitter -> TTS -> resampler -> pacer -> encoder.

Three stages run concurrently so the first clause is spoken while the LLM is still writing the rest:

- *text*: the LLM stream (or a fixed text such as the greeting) cut into speakable chunks;
- *voice*: each chunk synthesised, resampled to the output rate and queued on the :class:`OutputPacer`,
  recording which text each stretch of audio carries (the alignment used to trim on barge-in);
- *send*: the reply task itself takes paced ~50 ms chunks, applies the current volume, encodes them and
  sends ``reply.audio``, each followed by a ``transcript.agent.delta`` of the words the listener has
  heard since the last one (:class:`~voxgate.conversation.played_transcript.PlayedTranscript`).

A reply to a user's turn is *tentative* (``ReplyContext.tentative``): it is produced but nothing of it goes
out until its first audio chunk is ready to send (or it calls a tool, or it ends). It then asks to be heard
(``ReplyContext.ask_release``) and waits for the session loop's answer (:meth:`Reply.release`), which the
floor (:mod:`voxgate.conversation.floor`) decides: go (the session has announced it) or not (the user went
on speaking: the reply is dropped and its task cancelled). A reply never calls into the session.

Tool calls from the LLM: client tools are handed to the session loop (``ReplyContext.propose_call``; it
sends ``tool.call`` and owns the call from then on); HTTP tools in ``interactive`` mode run here and the LLM
is asked again with their results, so the same reply goes on; ``hold``-mode HTTP tools are returned to the
session, which runs them after the reply ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from voxgate.audio.codecs import apply_volume, encode_audio, sample_rate_for
from voxgate.audio.pacing import OutputPacer, PlayoutClock
from voxgate.audio.resample import StreamResampler
from voxgate.conversation.http_tools import HttpToolRunner, run_http_tool
from voxgate.conversation.ledger import Ledger, ToolCallRecord, result_messages, tool_error_text
from voxgate.conversation.played_transcript import PlayedTranscript, all_words, heard_words
from voxgate.conversation.timings import TurnTimings
from voxgate.conversation.tools import ToolSet, runs_on_server
from voxgate.protocol.events import ReplyAudio, ServerEvent
from voxgate.speech.base import ChatMessage, LanguageModel, TextDelta, TextToSpeech, ToolCallRequest
from voxgate.speech.sentences import SentenceSplitter, synthesis_text

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
FIRST_CLAUSE_WORDS = 3
"""The first chunk may end at a clause boundary once it has this many words ..."""
FIRST_PHRASE_WORDS = 3
"""... or, in a first sentence without one, before a word that opens a phrase (``SentenceSplitter``)."""

_Chunks = asyncio.Queue[tuple[str, bool] | None]
"""Text stage -> voice stage: (chunk, whether it ends what the LLM wrote for now)."""


@dataclass(slots=True)
class SpokenSegment:
    text: str
    start_ms: float
    end_ms: float
    complete: bool = False
    """All of the segment's audio was fed: ``end_ms`` no longer moves."""


@dataclass(slots=True)
class Alignment:
    """Which text each stretch of the reply's audio carries (milliseconds on the pacer's timeline). Texts
    are words separated by single spaces (see ``conversation.played_transcript``)."""

    segments: list[SpokenSegment] = field(default_factory=list)

    def full_text(self) -> str:
        return " ".join(word.text for word in all_words(self.segments))

    def heard_text(self, heard_ms: float) -> str:
        """The text of the audio heard so far; within a segment, proportional by words."""
        return " ".join(word.text for word in heard_words(self.segments, heard_ms, complete_only=False))


@dataclass(slots=True)
class ReplyOutcome:
    text: str
    hold_http_calls: list[ToolCallRecord] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class ReplyContext:
    """What a reply needs from its session."""

    reply_id: str
    item_id: str
    session_key: str
    llm: LanguageModel
    tts: TextToSpeech
    voice_id: str
    output_encoding: str
    volume: Callable[[], float]
    tools: ToolSet
    ledger: Ledger
    send: Callable[[ServerEvent], Awaitable[None]]
    propose_call: Callable[[ToolCallRecord], None]
    """Hand a client tool call to the session loop (it sends ``tool.call`` and owns the call's state)."""
    http_runner: HttpToolRunner | None
    timings: TurnTimings
    lead_ms: float = 150.0
    chunk_ms: float = 50.0
    acknowledged_playout: bool = False
    """What was heard is what the transport acknowledged (:meth:`Reply.acknowledge_playout`), not the
    time-based estimate (Twilio ``mark`` echoes)."""
    tentative: bool = False
    """Nothing of the reply may go out before the session releases it (see :meth:`Reply.release`)."""
    text_output: bool = False
    """A text session's reply (``output.type: "text"``): no speech; each chunk of text goes out as a
    ``transcript.agent.delta`` as soon as the model has written it."""
    ask_release: Callable[[Reply], None] | None = None
    """Post "this tentative reply is ready to be heard" to the session loop, which answers with
    :meth:`Reply.release`."""


class Reply:
    def __init__(
        self, context: ReplyContext, *, text: str | None = None, messages: list[ChatMessage] | None = None
    ) -> None:
        if (text is None) == (messages is None):
            raise ValueError("a reply speaks either a fixed text or an LLM answer to messages")
        self.context = context
        self._fixed_text = text
        self._messages = list(messages or [])
        self.alignment = Alignment()
        self.transcript = PlayedTranscript(self.alignment.segments, context.reply_id, context.item_id)
        """``transcript.agent.delta``s as the audio plays, and the final text (trimmed when cut)."""
        self.pacer = OutputPacer(
            sample_rate_for(context.output_encoding),
            chunk_ms=context.chunk_ms,
            lead_ms=context.lead_ms,
            clock=PlayoutClock(acknowledged=context.acknowledged_playout),
        )
        self._hold_http_calls: list[ToolCallRecord] = []
        self._stages: list[asyncio.Task[None]] = []
        self._released: asyncio.Future[bool] | None = None
        """The session loop's answer to a tentative reply's request to be heard."""

    @property
    def reply_id(self) -> str:
        return self.context.reply_id

    # --- control ------------------------------------------------------------------------------------
    def release(self, go: bool) -> None:
        """The session loop's answer to :attr:`ReplyContext.ask_release`: go out, or be dropped."""
        if self._released is not None and not self._released.done():
            self._released.set_result(go)

    async def _go_public(self) -> None:
        """Before anything of a tentative reply goes out: ask once, wait for the answer (the first audio
        and a tool call may both ask); a refusal ends the reply (the session cancels its task too)."""
        ctx = self.context
        if not ctx.tentative:
            return
        if self._released is None:
            self._released = asyncio.get_running_loop().create_future()
            assert ctx.ask_release is not None
            ctx.ask_release(self)
        if not await self._released:
            raise asyncio.CancelledError

    def stop_audio(self) -> str:
        """Silence the reply now; return the text of what the listener heard (its final transcript, which
        the deltas sent so far and :meth:`PlayedTranscript.rest` add up to)."""
        heard_ms = self.pacer.stop()
        return self.transcript.settle_heard(heard_ms)

    def acknowledge_playout(self, played_ms: float) -> None:
        """The listener has heard the first ``played_ms`` ms of this reply's audio (acknowledged mode)."""
        self.pacer.clock.acknowledge(played_ms)

    async def run(self) -> ReplyOutcome:
        chunks: _Chunks = asyncio.Queue()
        loop = asyncio.get_running_loop()
        output = self._print(chunks) if self.context.text_output else self._voice(chunks)
        self._stages = [
            loop.create_task(self._write(chunks), name=f"{self.reply_id}-text"),
            loop.create_task(output, name=f"{self.reply_id}-output"),
        ]
        try:
            await self._send_paced()
            for stage in self._stages:
                await stage
            await self._go_public()  # a reply with nothing to say still answers the turn
        finally:
            for stage in self._stages:
                stage.cancel()
            await asyncio.gather(*self._stages, return_exceptions=True)
        return ReplyOutcome(self.alignment.full_text(), self._hold_http_calls)

    # --- stage 1: text ----------------------------------------------------------------------------
    async def _write(self, chunks: _Chunks) -> None:
        splitter = SentenceSplitter(
            min_clause_words=FIRST_CLAUSE_WORDS, first_phrase_words=FIRST_PHRASE_WORDS
        )
        timings = self.context.timings
        try:
            if self._fixed_text is not None:
                for chunk in splitter.feed(self._fixed_text + " "):
                    self._first_sentence(timings)
                    chunks.put_nowait((chunk, False))
            else:
                await self._write_llm(splitter, chunks)
            rest = splitter.flush()
            if rest:
                self._first_sentence(timings)
                chunks.put_nowait((rest, True))
        finally:
            chunks.put_nowait(None)

    @staticmethod
    def _first_sentence(timings: TurnTimings) -> None:
        if timings.first_sentence is None:
            timings.first_sentence = time.monotonic()

    async def _write_llm(self, splitter: SentenceSplitter, chunks: _Chunks) -> None:
        ctx = self.context
        messages = self._messages
        for _round in range(MAX_TOOL_ROUNDS):
            round_text: list[str] = []
            server_calls: list[tuple[ToolCallRecord, ToolCallRequest]] = []
            stream = ctx.llm.stream(messages, ctx.tools.schemas(), session_key=ctx.session_key)
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for event in stream:
                    if ctx.timings.llm_first_token is None:
                        ctx.timings.llm_first_token = time.monotonic()
                    if isinstance(event, TextDelta):
                        round_text.append(event.text)
                        for chunk in splitter.feed(event.text):
                            self._first_sentence(ctx.timings)
                            chunks.put_nowait((chunk, False))
                    elif isinstance(event, ToolCallRequest):
                        record = await self._route_call(event)
                        if record is not None and record.server_side:
                            server_calls.append((record, event))
            interactive = [(r, e) for r, e in server_calls if r.execution_mode == "interactive"]
            if not interactive:
                return
            rest = splitter.flush()
            if rest:
                chunks.put_nowait((rest, True))
            await asyncio.gather(*(self._run_http(record) for record, _ in interactive))
            messages = [
                *messages,
                ChatMessage(
                    role="assistant", content="".join(round_text), tool_calls=[e for _, e in interactive]
                ),
                *(message for record, _ in interactive for message in result_messages(record)),
            ]

    def _new_call_id(self, proposed: str) -> str:
        if proposed and proposed not in self.context.ledger.calls and len(proposed) <= 128:
            return proposed
        return f"call_{secrets.token_hex(8)}"

    async def _route_call(self, request: ToolCallRequest) -> ToolCallRecord | None:
        ctx = self.context
        await self._go_public()
        spec = ctx.tools.find(request.name)
        call_id = self._new_call_id(request.call_id)
        arguments = request.arguments if isinstance(request.arguments, dict) else {}
        if spec is None:
            record = ToolCallRecord(call_id, request.name, arguments, ctx.reply_id, server_side=True)
            ctx.ledger.propose(record)
            ctx.ledger.answer(
                call_id, tool_error_text(f"There is no tool named '{request.name}'."), is_error=True
            )
            logger.info("LLM called unknown tool %r", request.name)
            return None
        instructions = spec.response_instructions
        record = ToolCallRecord(
            call_id,
            spec.name,
            arguments,
            ctx.reply_id,
            execution_mode=spec.execution_mode,
            server_side=runs_on_server(spec),
            on_success=instructions.success if instructions else None,
            on_error=instructions.error if instructions else None,
        )
        if record.server_side:
            ctx.ledger.propose(record)
            if record.execution_mode == "hold":
                self._hold_http_calls.append(record)
            return record
        ctx.propose_call(record)
        return record

    async def _run_http(self, record: ToolCallRecord) -> None:
        ctx = self.context
        ctx.ledger.mark_sent(record.call_id)
        outcome = await run_http_tool(ctx.http_runner, ctx.tools, record)
        ctx.ledger.answer(record.call_id, outcome.text, is_error=outcome.is_error)

    # --- stage 2: voice ---------------------------------------------------------------------------
    async def _voice(self, chunks: _Chunks) -> None:
        ctx = self.context
        pacer = self.pacer
        resampler = StreamResampler(ctx.tts.sample_rate, pacer.sample_rate, dtype=np.int16)
        fed_samples = 0
        try:
            while (item := await chunks.get()) is not None:
                text, last = item
                start_ms = fed_samples * 1000 / pacer.sample_rate
                segment = SpokenSegment(text, start_ms, start_ms)
                self.alignment.segments.append(segment)
                stream = ctx.tts.synthesize(synthesis_text(text, last=last), voice_id=ctx.voice_id)
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for pcm in stream:
                        if ctx.timings.tts_first_audio is None:
                            ctx.timings.tts_first_audio = time.monotonic()
                        out = resampler.process(np.asarray(pcm, dtype=np.int16))
                        fed_samples += out.size
                        pacer.feed(out)
                        segment.end_ms = fed_samples * 1000 / pacer.sample_rate
                tail = resampler.flush()
                fed_samples += tail.size
                pacer.feed(tail)
                segment.end_ms = fed_samples * 1000 / pacer.sample_rate
                segment.complete = True
        finally:
            if not pacer.stopped:
                pacer.finish()

    async def _print(self, chunks: _Chunks) -> None:
        """Stage 2 of a text reply: each chunk is "heard" as soon as it is written (no audio, no clock)."""
        ctx = self.context
        try:
            while (item := await chunks.get()) is not None:
                await self._go_public()
                self.alignment.segments.append(SpokenSegment(item[0], 0.0, 0.0, complete=True))
                if (delta := self.transcript.advance(0.0)) is not None:
                    if ctx.timings.first_audio_sent is None:
                        ctx.timings.first_audio_sent = time.monotonic()  # the first output, here text
                    await asyncio.shield(ctx.send(delta))  # counts as sent once made (see _send_paced)
        finally:
            if not self.pacer.stopped:
                self.pacer.finish()

    # --- stage 3: send ----------------------------------------------------------------------------
    async def _send_paced(self) -> None:
        ctx = self.context
        encoding = ctx.output_encoding
        async for chunk in self.pacer:
            await self._go_public()
            volume = ctx.volume()
            pcm = chunk if volume >= 100 else apply_volume(chunk, volume)
            data = base64.b64encode(encode_audio(encoding, pcm)).decode("ascii")
            await ctx.send(ReplyAudio(data=data, reply_id=ctx.reply_id))
            if ctx.timings.first_audio_sent is None:
                ctx.timings.first_audio_sent = time.monotonic()
            if (delta := self.transcript.advance(self.pacer.played_ms())) is not None:
                # Shielded: a delta counts as sent once made, so it must go out even if the reply is cut now.
                await asyncio.shield(ctx.send(delta))
