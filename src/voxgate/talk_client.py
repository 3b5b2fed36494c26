"""``voxgate talk``: a terminal client of the realtime ``/v1/ws`` protocol.

It plays the part of a caller: it connects with an API key, configures the session (inline or
with a stored ``agent_id``), waits for ``session.ready`` (and for the greeting to finish, if
there is one), then streams a WAV file as ``input.audio`` at real-time pace in 50 ms chunks,
followed by continuous silence as a microphone would send, so the server's turn detection fires.
It prints transcripts and tool calls as they arrive, saves the agent's ``reply.audio`` to a WAV
file, and ends the session with ``session.end`` once the replies are complete (or on timeout).

Client-side tool calls are answered after the carrying ``reply.done`` (PROTOCOL.md §5.4), by a
``tool_handler`` if given, otherwise with an error result saying the tool is not available here.

Microphone input is optional: pass ``wav_path=None`` and it uses the ``sounddevice`` package if
installed (it is not a voxgate dependency; without it a clear :class:`TalkError` is raised).

Library use (the CLI and the benchmark)::

    result = await run_talk("ws://127.0.0.1:8000/v1/ws", key, "question.wav", "reply.wav",
                            system_prompt="You are terse.", on_line=print)
    result.turn_latencies[0].first_audio_ms   # user speech end -> first reply.audio
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import inspect
import json
import os
import sys
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voxgate.audio import PCM, decode_base64_audio, encode_audio, resample, sample_rate_for
from voxgate.audio.codecs import AudioDecodeError, UnknownEncodingError

CHUNK_MS = 50
SPEECH_RMS = 328  # a 10 ms frame louder than 1 % of full scale (-40 dBFS RMS) counts as speech

ToolHandler = Callable[[str, dict[str, Any]], Awaitable[str] | str]
LineSink = Callable[[str], None]


class TalkError(Exception):
    """The talk session could not run (connection, authentication, bad WAV, server error)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


# --- results ------------------------------------------------------------------------------------


@dataclass
class ToolCallRecord:
    call_id: str
    name: str
    arguments: dict[str, Any]
    reply_id: str | None
    result: str | None = None
    """What the client answered with ``tool.result``; ``None`` if not sent (reply interrupted)."""


@dataclass
class AgentReply:
    reply_id: str | None
    started_at: float
    """Seconds since the connection opened."""
    first_audio_at: float | None = None
    done_at: float | None = None
    text: str | None = None
    interrupted: bool = False
    status: str | None = None
    audio_ms: float = 0.0
    greeting: bool = False
    tool_calls: list[ToolCallRecord] = field(default_factory=list)


@dataclass
class TurnLatency:
    """Times after the end of the user's speech (the last loud sample of the WAV), in ms."""

    transcript_ms: float | None
    reply_started_ms: float | None
    first_audio_ms: float | None


@dataclass
class TalkResult:
    session_id: str | None = None
    user_transcripts: list[str] = field(default_factory=list)
    replies: list[AgentReply] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    """``session.error`` events received (the session may have continued)."""
    turn_latencies: list[TurnLatency] = field(default_factory=list)
    speech_end_at: float | None = None
    """Seconds since the connection opened at which the WAV's speech ended (real-time pace)."""
    output_path: Path | None = None
    output_audio_ms: float = 0.0
    ended: dict[str, Any] | None = None
    """The ``session.ended`` event, if the server sent one."""
    close_code: int | None = None
    timed_out: bool = False

    @property
    def agent_transcripts(self) -> list[str]:
        return [reply.text for reply in self.replies if reply.text is not None]

    @property
    def first_audio_latency_ms(self) -> float | None:
        """User speech end -> first ``reply.audio`` of the answer, for the first turn."""
        return self.turn_latencies[0].first_audio_ms if self.turn_latencies else None


# --- audio sources ------------------------------------------------------------------------------


def load_wav(path: str | Path, sample_rate: int) -> NDArray[np.int16]:
    """Read a PCM WAV (8/16/24/32-bit, any rate, any channel count) as mono int16 at ``sample_rate``."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError as exc:
        raise TalkError(f"WAV file not found: {path}") from exc
    except (wave.Error, EOFError) as exc:
        raise TalkError(f"{path} is not a PCM WAV file: {exc}") from exc
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        padded = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        as_int32 = (padded[:, 0].astype(np.int32) << 8) | (padded[:, 1].astype(np.int32) << 16)
        as_int32 |= padded[:, 2].astype(np.int32) << 24
        samples = (as_int32 >> 8).astype(np.float32) / 8_388_608
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2_147_483_648
    else:
        raise TalkError(f"{path}: unsupported sample width of {width} bytes")
    mono = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    mono = resample(mono, rate, sample_rate)
    return np.clip(np.rint(mono * 32768), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, pcm: NDArray[np.int16], sample_rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.astype("<i2", copy=False).tobytes())


def speech_end_ms(pcm: NDArray[np.int16], sample_rate: int) -> float:
    """Where the user's speech ends: the end of the last 10 ms frame above -40 dBFS RMS.

    Works on noisy or dithered recordings, where single samples above a level would not. A WAV
    with no loud frame counts as speech throughout.
    """
    frame = max(1, sample_rate // 100)
    count = pcm.size // frame
    if count == 0:
        return pcm.size * 1000 / sample_rate
    frames = pcm[: count * frame].astype(np.float32).reshape(count, frame)
    loud = np.flatnonzero(np.sqrt(np.mean(np.square(frames), axis=1)) > SPEECH_RMS)
    end = (int(loud[-1]) + 1) * frame if loud.size else pcm.size
    return end * 1000 / sample_rate


def _import_sounddevice() -> Any:
    try:
        import sounddevice  # type: ignore[import-not-found]
    except ImportError as exc:
        raise TalkError(
            "microphone input needs the optional 'sounddevice' package (pip install sounddevice); "
            "pass a WAV file instead"
        ) from exc
    return sounddevice


async def _microphone_chunks(sample_rate: int, chunk_samples: int) -> AsyncIterator[NDArray[np.int16]]:
    """Live microphone capture with ``sounddevice`` (optional; not installed with voxgate)."""
    sounddevice = _import_sounddevice()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[NDArray[np.int16]] = asyncio.Queue()

    def captured(indata: np.ndarray, _frames: int, _time: object, _status: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, indata[:, 0].copy())

    with sounddevice.InputStream(
        samplerate=sample_rate, channels=1, dtype="int16", blocksize=chunk_samples, callback=captured
    ):
        while True:
            yield await queue.get()


# --- the session driver -------------------------------------------------------------------------


@dataclass
class _Closed:
    """The server closed the connection."""

    code: int | None
    reason: str


@dataclass
class _SpeechEnded:
    """The sender has streamed the WAV's speech (or stopped, with the error that stopped it)."""

    error: BaseException | None = None


_Event = dict[str, Any] | _Closed | _SpeechEnded


def _session_update(
    agent_id: str | None,
    system_prompt: str | None,
    greeting: str | None,
    voice: str | None,
    input_encoding: str,
    output_encoding: str,
) -> dict[str, Any]:
    if agent_id is not None:
        inline = (system_prompt, greeting, voice)
        if any(v is not None for v in inline) or input_encoding != PCM or output_encoding != PCM:
            raise ValueError("agent_id is mutually exclusive with inline session fields and formats")
        return {"type": "session.update", "session": {"agent_id": agent_id}}
    session: dict[str, Any] = {}
    if system_prompt is not None:
        session["system_prompt"] = system_prompt
    if greeting is not None:
        session["greeting"] = greeting
    output: dict[str, Any] = {}
    if voice is not None:
        output["voice"] = voice
    if output_encoding != PCM:
        output["format"] = {"encoding": output_encoding}
    if output:
        session["output"] = output
    if input_encoding != PCM:
        session["input"] = {"format": {"encoding": input_encoding}}
    return {"type": "session.update", "session": session}


class _TalkRun:
    """State of one talk session; a single coroutine consumes server events in order."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        input_encoding: str,
        output_encoding: str,
        tool_handler: ToolHandler | None,
        on_line: LineSink | None,
    ) -> None:
        self.ws = ws
        self.input_encoding = input_encoding
        self.output_encoding = output_encoding
        self.tool_handler = tool_handler
        self.on_line = on_line
        self.result = TalkResult()
        self.events: asyncio.Queue[_Event] = asyncio.Queue()
        self.opened = time.monotonic()
        self.audio: list[NDArray[np.int16]] = []
        self.current: AgentReply | None = None
        self.closed = False
        self.last_delta: str | None = None
        self.transcript_at: float | None = None
        self.awaiting_follow_up = False  # tool results sent, the answer reply has not started yet
        self.speech_sent = False

    def now(self) -> float:
        return time.monotonic() - self.opened

    def say(self, line: str) -> None:
        if self.on_line is not None:
            self.on_line(line)

    async def send(self, event: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps(event, separators=(",", ":")))

    async def receive_forever(self) -> None:
        try:
            async for message in self.ws:
                try:
                    event = json.loads(message)
                except (TypeError, ValueError):
                    self.say(f"! server sent a non-JSON message: {str(message)[:80]!r}")
                    continue
                if isinstance(event, dict):
                    await self.events.put(event)
            await self.events.put(_Closed(self.ws.close_code, self.ws.close_reason or ""))
        except ConnectionClosed as exc:
            await self.events.put(_Closed(exc.rcvd.code if exc.rcvd else None, str(exc)))

    async def next_event(self, within_s: float | None = None) -> _Event | None:
        """The next server event; ``None`` if ``within_s`` seconds pass first."""
        try:
            return await asyncio.wait_for(self.events.get(), within_s)
        except TimeoutError:
            return None

    # -- event handling ------------------------------------------------------------------------

    async def handle(self, event: _Event) -> None:
        if isinstance(event, _Closed):
            self.closed = True
            self.result.close_code = event.code
            return
        if isinstance(event, _SpeechEnded):
            self.speech_sent = True
            if event.error is not None and not isinstance(event.error, ConnectionClosed):
                raise event.error
            return
        kind = event.get("type")
        if kind == "session.ready":
            self.result.session_id = event.get("session_id")
            self.say(f"* session ready ({self.result.session_id})")
        elif kind == "session.error":
            self.result.errors.append(event)
            self.say(f"! session.error {event.get('code')}: {event.get('message')}")
        elif kind == "session.ended":
            self.result.ended = event
            self.say(f"* session ended after {event.get('session_duration_seconds')} s")
        elif kind == "input.speech.started":
            self.say("* (speech started)")
        elif kind == "input.speech.stopped":
            self.say("* (speech stopped)")
        elif kind == "transcript.user.delta":
            text = str(event.get("text", ""))
            if text != self.last_delta:
                self.last_delta = text
                self.say(f"  user … {text}")
        elif kind == "transcript.user":
            text = str(event.get("text", ""))
            self.last_delta = None
            self.transcript_at = self.now()
            self.result.user_transcripts.append(text)
            self.say(f"user: {text}")
        elif kind == "reply.started":
            self.current = AgentReply(reply_id=event.get("reply_id"), started_at=self.now())
            self.awaiting_follow_up = False
            self.result.replies.append(self.current)
        elif kind == "reply.audio":
            self.take_audio(event)
        elif kind == "transcript.agent":
            reply = self.reply_for(event.get("reply_id"))
            reply.text = str(event.get("text", ""))
            reply.interrupted = bool(event.get("interrupted", False))
            self.say(f"agent: {reply.text}" + (" [interrupted]" if reply.interrupted else ""))
        elif kind == "tool.call":
            arguments = event.get("arguments", event.get("args", {}))
            call = ToolCallRecord(
                call_id=str(event.get("call_id", "")),
                name=str(event.get("name", "")),
                arguments=arguments if isinstance(arguments, dict) else {},
                reply_id=self.current.reply_id if self.current else None,
            )
            self.reply_for(call.reply_id).tool_calls.append(call)
            self.result.tool_calls.append(call)
            self.say(f"tool call: {call.name}({json.dumps(call.arguments)})")
        elif kind == "reply.done":
            await self.finish_reply(event)

    def reply_for(self, reply_id: object) -> AgentReply:
        """The reply an event belongs to: the current one unless the event names another."""
        if self.current is not None and reply_id in (None, self.current.reply_id):
            return self.current
        for reply in reversed(self.result.replies):
            if reply_id is not None and reply.reply_id == reply_id:
                return reply
        # an event for a reply we never saw start: record it anyway
        reply = AgentReply(reply_id=str(reply_id) if reply_id is not None else None, started_at=self.now())
        self.result.replies.append(reply)
        self.current = reply
        return reply

    def take_audio(self, event: dict[str, Any]) -> None:
        reply = self.reply_for(event.get("reply_id"))
        try:
            pcm = decode_base64_audio(self.output_encoding, str(event.get("data", "")))
        except AudioDecodeError as exc:
            self.say(f"! undecodable reply.audio: {exc}")
            return
        if reply.first_audio_at is None:
            reply.first_audio_at = self.now()
        reply.audio_ms += pcm.size * 1000 / sample_rate_for(self.output_encoding)
        self.audio.append(pcm)

    async def finish_reply(self, event: dict[str, Any]) -> None:
        reply = self.reply_for(event.get("reply_id"))
        reply.status = str(event.get("status", "completed"))
        reply.done_at = self.now()
        self.current = None
        if reply.status == "interrupted" or not reply.tool_calls:
            return  # results of an interrupted reply are dropped (PROTOCOL.md §8.2)
        for call in reply.tool_calls:
            call.result = await self.tool_result(call)
            await self.send({"type": "tool.result", "call_id": call.call_id, "result": call.result})
        self.awaiting_follow_up = True

    async def tool_result(self, call: ToolCallRecord) -> str:
        if self.tool_handler is None:
            return json.dumps({"error": f"tool {call.name!r} is not available in voxgate talk"})
        answer = self.tool_handler(call.name, call.arguments)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer if isinstance(answer, str) else json.dumps(answer)

    # -- phases --------------------------------------------------------------------------------

    async def wait_ready(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self.result.session_id is None:
            event = await self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                raise TalkError(f"no session.ready within {within_s:.0f} s")
            await self.handle(event)
            if self.closed or (isinstance(event, dict) and event.get("type") == "session.error"):
                error = self.result.errors[-1] if self.result.errors else {}
                raise TalkError(
                    f"session not started: {error.get('code', 'closed')}: "
                    f"{error.get('message', f'connection closed (code {self.result.close_code})')}",
                    code=error.get("code"),
                )

    async def wait_greeting(self, expect_greeting: bool, wait_s: float) -> None:
        """Let a greeting play out before the user speaks, as a caller would.

        With ``expect_greeting`` it waits up to 30 s for the greeting to start, otherwise ``wait_s``.
        """
        deadline = time.monotonic() + (30.0 if expect_greeting else wait_s)
        while not self.closed:
            if self.result.replies and self.current is None and self.result.replies[-1].done_at is not None:
                for reply in self.result.replies:
                    reply.greeting = True
                return
            timeout = deadline - time.monotonic() if not self.result.replies else None
            if timeout is not None and timeout <= 0:
                return
            event = await self.next_event(timeout)
            if event is None:
                return
            await self.handle(event)

    async def stream_audio(self, source: AsyncIterator[NDArray[np.int16]]) -> None:
        """Send the source as ``input.audio``; queue :class:`_SpeechEnded` once the speech is out."""
        announced = False
        try:
            async for chunk in source:
                await self.send(
                    {
                        "type": "input.audio",
                        "audio": base64.b64encode(encode_audio(self.input_encoding, chunk)).decode("ascii"),
                    }
                )
                end = self.result.speech_end_at
                if not announced and end is not None and self.now() >= end:
                    announced = True
                    await self.events.put(_SpeechEnded())
        except Exception as exc:
            await self.events.put(_SpeechEnded(exc))
            raise

    async def converse(self, settle_s: float) -> None:
        """Handle events until the replies to the user's speech are complete.

        Complete means: the speech has been sent, at least one reply after it is done, no reply
        is in progress, no tool answer is awaited, and ``settle_s`` passed without new events.
        """
        turn_start = len(self.result.replies)
        while not self.closed and self.result.ended is None:
            settled = (
                self.speech_sent
                and self.current is None
                and not self.awaiting_follow_up
                and any(r.done_at is not None for r in self.result.replies[turn_start:])
            )
            event = await self.next_event(settle_s if settled else None)
            if event is None:
                return
            await self.handle(event)

    def compute_latencies(self) -> None:
        end = self.result.speech_end_at
        if end is None:
            return
        after = [r for r in self.result.replies if not r.greeting and r.started_at >= end - 0.001]
        if not after and self.transcript_at is None:
            return
        first = after[0] if after else None
        self.result.turn_latencies.append(
            TurnLatency(
                transcript_ms=(self.transcript_at - end) * 1000 if self.transcript_at is not None else None,
                reply_started_ms=(first.started_at - end) * 1000 if first else None,
                first_audio_ms=(
                    (first.first_audio_at - end) * 1000
                    if first is not None and first.first_audio_at is not None
                    else None
                ),
            )
        )

    async def end_session(self, within_s: float) -> None:
        if self.closed:
            return
        with contextlib.suppress(ConnectionClosed):
            await self.send({"type": "session.end"})
        deadline = time.monotonic() + within_s
        while not self.closed:  # session.ended, then the server closes the socket
            event = await self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                if self.result.ended is None:
                    self.say("! no session.ended after session.end")
                return
            await self.handle(event)


async def _paced_wav_then_silence(
    run: _TalkRun, pcm: NDArray[np.int16], sample_rate: int
) -> AsyncIterator[NDArray[np.int16]]:
    """WAV chunks at real-time pace, as a microphone delivers them, then silence forever.

    Chunk k is released when its last sample has "been spoken": at t0 + (k + 1) * 50 ms.
    """
    chunk_samples = sample_rate * CHUNK_MS // 1000
    silence = np.zeros(chunk_samples, dtype=np.int16)
    start = time.monotonic()
    run.result.speech_end_at = (start - run.opened) + speech_end_ms(pcm, sample_rate) / 1000
    pcm = np.concatenate([pcm, silence[: -pcm.size % chunk_samples]])  # whole chunks only
    k = 0
    while True:
        offset = k * chunk_samples
        chunk = pcm[offset : offset + chunk_samples] if offset < pcm.size else silence
        release = start + (k + 1) * CHUNK_MS / 1000
        delay = release - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield chunk
        k += 1


async def _microphone_source(run: _TalkRun, sample_rate: int) -> AsyncIterator[NDArray[np.int16]]:
    run.result.speech_end_at = None
    async for chunk in _microphone_chunks(sample_rate, sample_rate * CHUNK_MS // 1000):
        yield chunk


async def run_talk(
    url: str,
    api_key: str,
    wav_path: str | Path | None,
    out_path: str | Path | None,
    *,
    agent_id: str | None = None,
    system_prompt: str | None = None,
    greeting: str | None = None,
    voice: str | None = None,
    timeout: float = 60.0,  # noqa: ASYNC109 - the talk budget, applied with asyncio.timeout
    input_encoding: str = PCM,
    output_encoding: str = PCM,
    greeting_wait_s: float = 1.5,
    settle_s: float = 1.0,
    tool_handler: ToolHandler | None = None,
    on_line: LineSink | None = None,
) -> TalkResult:
    """Talk to a voxgate (or compatible) server once and return what happened.

    ``wav_path``: speech to send (converted to the input encoding's rate, mono); ``None`` uses the
    microphone (needs ``sounddevice``; the session then runs until ``timeout``).
    ``out_path``: where to save the agent's audio as a mono 16-bit WAV (``None``: don't save).
    ``timeout``: seconds for the conversation after ``session.ready``; when it passes the
    session is ended and the result has ``timed_out=True``.
    ``greeting_wait_s``: without an inline ``greeting``, how long to wait for a stored agent's
    greeting to start before speaking. ``settle_s``: quiet time after the last ``reply.done``
    before the turn counts as complete. ``on_line`` receives human-readable progress lines.

    Raises :class:`TalkError` when the session cannot start (connection refused, rejected
    key, ``session.error`` before ``session.ready``, unreadable WAV).
    """
    for encoding in (input_encoding, output_encoding):
        try:
            sample_rate_for(encoding)
        except UnknownEncodingError as exc:
            raise TalkError(str(exc)) from exc
    update = _session_update(agent_id, system_prompt, greeting, voice, input_encoding, output_encoding)
    input_rate = sample_rate_for(input_encoding)
    pcm = load_wav(wav_path, input_rate) if wav_path is not None else None
    if pcm is None:
        _import_sounddevice()  # fail before connecting if there is no microphone support
    try:
        ws_context = connect(
            url,
            additional_headers={"Authorization": f"Bearer {api_key}"},
            max_size=None,
            open_timeout=10,
        )
        ws = await ws_context
    except InvalidStatus as exc:
        status = exc.response.status_code
        code = "unauthorized" if status in (401, 403) else None
        raise TalkError(f"server refused the WebSocket upgrade with HTTP {status}", code=code) from exc
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise TalkError(f"cannot connect to {url}: {exc}") from exc

    run = _TalkRun(
        ws,
        input_encoding=input_encoding,
        output_encoding=output_encoding,
        tool_handler=tool_handler,
        on_line=on_line,
    )
    receiver = asyncio.create_task(run.receive_forever())
    sender: asyncio.Task[None] | None = None
    try:
        with contextlib.suppress(ConnectionClosed):  # a rejection is read from the event queue
            await run.send(update)
        await run.wait_ready(within_s=15.0)
        try:
            async with asyncio.timeout(timeout):
                if greeting is not None or agent_id is not None:  # inline without greeting: none
                    await run.wait_greeting(greeting is not None, greeting_wait_s)
                source = (
                    _paced_wav_then_silence(run, pcm, input_rate)
                    if pcm is not None
                    else _microphone_source(run, input_rate)
                )
                sender = asyncio.create_task(run.stream_audio(source))
                await run.converse(settle_s)
        except TimeoutError:
            run.result.timed_out = True
            run.say(f"! timed out after {timeout:.0f} s")
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender  # a sender failure other than a closed connection propagates
        run.compute_latencies()
        await run.end_session(within_s=5.0)
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
        await ws.close()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
    if out_path is not None:
        rate = sample_rate_for(output_encoding)
        audio = np.concatenate(run.audio) if run.audio else np.zeros(0, dtype=np.int16)
        write_wav(out_path, audio, rate)
        run.result.output_path = Path(out_path)
        run.result.output_audio_ms = audio.size * 1000 / rate
    return run.result


def format_summary(result: TalkResult) -> str:
    """A few human-readable lines summarising a talk session (for the CLI)."""
    lines = [f"session: {result.session_id}"]
    for latency in result.turn_latencies:
        parts = [
            f"{label} {value:.0f} ms"
            for label, value in (
                ("transcript", latency.transcript_ms),
                ("reply started", latency.reply_started_ms),
                ("first audio", latency.first_audio_ms),
            )
            if value is not None
        ]
        lines.append("after end of speech: " + ", ".join(parts))
    if result.output_path is not None:
        lines.append(f"agent audio: {result.output_audio_ms / 1000:.2f} s saved to {result.output_path}")
    if result.timed_out:
        lines.append("timed out before the reply completed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m voxgate.talk_client``: the same as ``voxgate talk``."""
    parser = argparse.ArgumentParser(prog="voxgate talk", description=__doc__.splitlines()[0])
    parser.add_argument("wav", nargs="?", help="speech to send (omit to use the microphone)")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    parser.add_argument("--api-key", default=os.environ.get("VOXGATE_API_KEY", ""))
    parser.add_argument("--out", default="reply.wav", help="where to save the agent's audio")
    parser.add_argument("--agent-id")
    parser.add_argument("--system-prompt")
    parser.add_argument("--greeting")
    parser.add_argument("--voice")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--text", action="store_true", help="chat in text instead (a text session)")
    parser.add_argument("--say", action="append", help="with --text: a line to send (repeatable; else stdin)")
    args = parser.parse_args(argv)
    if args.text:
        return _text_chat(args)
    try:
        result = asyncio.run(
            run_talk(
                args.url,
                args.api_key,
                args.wav,
                args.out,
                agent_id=args.agent_id,
                system_prompt=args.system_prompt,
                greeting=args.greeting,
                voice=args.voice,
                timeout=args.timeout,
                on_line=print,
            )
        )
    except (TalkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result))
    return 0


def _text_chat(args: argparse.Namespace) -> int:
    from voxgate.text_chat import ChatError, chat

    try:
        asyncio.run(
            chat(
                args.url,
                args.api_key,
                args.say,
                agent_id=args.agent_id,
                system_prompt=args.system_prompt,
                greeting=args.greeting,
            )
        )
    except (ChatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
