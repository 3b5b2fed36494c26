"""One connection's recorder: the seam between the connection layer and session history.

The connection layer (``/v1/ws``, the Twilio bridge) creates one per connection
(:meth:`voxgate.history.service.HistoryService.recorder`) and feeds it what it sees, never touching the
engine:

- :meth:`SessionRecorder.client_input` with each parsed client event (or protocol error) *before* it is
  queued for the session (the session drops fields it does not know, such as ``webhook`` and ``record``,
  from the message as it handles it);
- every server event and the close, by giving the session :meth:`SessionRecorder.wrap_sink` of its sink;
- :meth:`SessionRecorder.finish` once the connection is over (after the session ended).

Nothing here may break or slow down a conversation: every failure is logged and counted and the
conversation goes on; database work and file closing run in tasks / threads, outside the event path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from voxgate.audio.codecs import decode_base64_audio, sample_rate_for
from voxgate.conversation.dependencies import EventSink
from voxgate.conversation.session import Session
from voxgate.conversation.timings import TurnTimings
from voxgate.history.artifacts import AUDIO, METADATA, TIMELINE, Artifact
from voxgate.history.audio_recording import OggOpusWriter, QueuedWriter, RecordingFailed, TwoTrackRecording
from voxgate.history.redaction import redact_arguments, redact_config, sensitive_arguments
from voxgate.history.timeline import TimelineSpool, assemble
from voxgate.protocol.errors import CloseCode
from voxgate.protocol.events import (
    InputAudio,
    ProtocolError,
    ReplyAudio,
    ReplyDone,
    ServerEvent,
    SessionEnd,
    SessionEnded,
    SessionReady,
    SessionResume,
    SessionUpdate,
    SessionUpdated,
    ToolCall,
    TranscriptAgent,
)
from voxgate.store.session_records import SessionEnd as RecordEnd
from voxgate.store.session_records import SessionStart
from voxgate.store.timestamps import format_timestamp

if TYPE_CHECKING:
    from voxgate.history.service import HistoryService

logger = logging.getLogger(__name__)

WEBSOCKET, BROWSER, PHONE = "websocket", "browser", "phone"
MAX_EARLY_ENTRIES = 200
"""Timeline entries kept before the session is ready (its files do not exist yet); later ones dropped."""
START_TIMEOUT_SECONDS = 10.0
FINISH_TIMEOUT_SECONDS = 30.0
SERVER_RESTART = 1012
ERROR_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")


class SessionRecorder:
    def __init__(
        self,
        service: HistoryService,
        project_id: str,
        channel: str,
        *,
        caller_number: str | None = None,
        called_number: str | None = None,
    ) -> None:
        self._service = service
        self.project_id = project_id
        self.channel = channel
        self.caller_number = caller_number
        self.called_number = called_number
        self.session_id: str | None = None
        self.segment = 0
        self._opened = time.time()
        self._opened_monotonic = time.monotonic()
        self._ready_at: float | None = None
        self._config: dict[str, Any] = {}
        self._inline: dict[str, Any] = {}
        """The first ``session.update`` payload's fields that the session does not keep (``webhook``,
        ``record``) and its tools (for their sensitive arguments)."""
        self._resuming = False
        self._entries: list[dict[str, Any]] = []
        self._timeline: TimelineSpool | None = None
        self._sensitive: dict[str, frozenset[str]] = {}
        self._audio: TwoTrackRecording | None = None
        self._record_audio = False
        self._audio_failure_reported = False
        self._input_encoding = "audio/pcm"
        self._output_encoding = "audio/pcm"
        self._close_code: int | None = None
        self._close_reason = ""
        self._client_ended = False
        self._ended: SessionEnded | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._finished = False

    # --- feeding -----------------------------------------------------------------------------------------
    def wrap_sink(self, sink: EventSink) -> RecordingSink:
        return RecordingSink(sink, self)

    def observe_pushes(self, session: Session) -> None:
        """For a transport that pushes client events into the session itself (the Twilio bridge): every
        ``session.push`` is shown to :meth:`client_input` first."""
        push = session.push

        def observed(item: Any) -> None:
            self.client_input(item)
            push(item)

        session.push = observed  # type: ignore[method-assign]

    def client_input(self, item: object) -> None:
        try:
            self._on_client(item)
        except Exception:
            logger.exception("session history: recording a client event failed")

    def server_event(self, event: ServerEvent) -> None:
        try:
            self._on_server(event)
        except Exception:
            logger.exception("session history: recording a server event failed")

    def closed(self, code: int, reason: str) -> None:
        if self._close_code is None:
            self._close_code = code
            self._close_reason = reason

    def turn(self, timings: TurnTimings) -> None:
        """A finished turn of this session (the session's telemetry hands it here)."""
        self._add(
            {
                "from": "voxgate",
                "type": "turn.latency",
                "reply_id": timings.reply_id,
                **timings.intervals_ms(),
            }
        )

    # --- client events -----------------------------------------------------------------------------------
    def _on_client(self, item: object) -> None:
        t = self._now()
        if isinstance(item, InputAudio):
            self._on_caller_audio(item, t)
            return
        if isinstance(item, ProtocolError):
            self._add(
                {
                    "t": t,
                    "from": "client",
                    "type": "invalid",
                    "code": item.code.value,
                    "message": item.message,
                    "param": item.param,
                }
            )
            return
        entry = getattr(item, "model_dump", None)
        if entry is None:
            return
        data: dict[str, Any] = json.loads(json.dumps(entry(mode="json"), default=str))
        if isinstance(item, SessionUpdate):
            self._on_session_update(item)
            data["session"] = redact_config(data.get("session"))
        elif isinstance(item, SessionResume):
            self._resuming = True
        elif isinstance(item, SessionEnd):
            self._client_ended = True
        self._add({"t": t, "from": "client", **data})

    def _on_session_update(self, item: SessionUpdate) -> None:
        if self.session_id is not None:
            return
        payload = item.session
        for key in ("webhook", "record"):
            if key in payload:
                self._inline[key] = json.loads(json.dumps(payload[key], default=str))
        tools = payload.get("tools")
        if isinstance(tools, list):
            self._inline["tools"] = [tool for tool in tools if isinstance(tool, dict)]

    def _on_caller_audio(self, item: InputAudio, t: float) -> None:
        audio = self._audio
        if self.session_id is None:
            return
        try:
            pcm = decode_base64_audio(self._input_encoding, item.audio)
        except ValueError:
            return  # the session reports it
        rate = sample_rate_for(self._input_encoding)
        if self._timeline is not None:
            self._timeline.add_audio(t, "client", "input.audio", pcm.size * 1000 / rate)
        if audio is not None:
            audio.caller(pcm, rate)
            self._check_audio()

    # --- server events -----------------------------------------------------------------------------------
    def _on_server(self, event: ServerEvent) -> None:
        t = self._now()
        if isinstance(event, ReplyAudio):
            self._on_agent_audio(event, t)
            return
        data = event.to_wire()
        data.pop("timestamp", None)
        if isinstance(event, SessionReady):
            data.pop("resume_token", None)
            self._on_ready(event)
        elif isinstance(event, SessionEnded):
            self._ended = event
        elif isinstance(event, SessionUpdated):
            self._input_encoding = _encoding(event.config.get("input"), self._input_encoding)
        elif isinstance(event, ToolCall):
            sensitive = self._sensitive.get(event.name, frozenset())
            data["arguments"] = redact_arguments(data.get("arguments"), sensitive)
            data["args"] = redact_arguments(data.get("args"), sensitive)
        self._add({"t": t, "from": "server", **data})
        if isinstance(event, TranscriptAgent) and event.interrupted:
            dropped = self._audio.cut_agent() if self._audio is not None else None
            self._add(
                {
                    "t": t,
                    "from": "voxgate",
                    "type": "barge_in",
                    "reply_id": event.reply_id,
                    "unplayed_ms": None if dropped is None else round(dropped, 1),
                }
            )
        elif isinstance(event, ReplyDone) and event.status == "interrupted" and self._audio is not None:
            self._audio.cut_agent()

    def _on_agent_audio(self, event: ReplyAudio, t: float) -> None:
        if self.session_id is None:
            return
        try:
            pcm = decode_base64_audio(self._output_encoding, event.data)
        except ValueError:
            return
        rate = sample_rate_for(self._output_encoding)
        if self._timeline is not None:
            self._timeline.add_audio(t, "server", "reply.audio", pcm.size * 1000 / rate, event.reply_id)
        if self._audio is not None:
            self._audio.agent(pcm, rate, event.reply_id)
            self._check_audio()

    def _on_ready(self, event: SessionReady) -> None:
        if self.session_id is not None:
            return
        self.session_id = event.session_id
        self._ready_at = time.time()
        self._config = event.config
        self._input_encoding = _encoding(event.config.get("input"), self._input_encoding)
        self._output_encoding = _encoding(event.config.get("output"), self._output_encoding)
        self._service.track(self)
        self._start_task = asyncio.get_running_loop().create_task(self._start(), name="history-start")

    # --- start and finish --------------------------------------------------------------------------------
    async def _start(self) -> None:
        """Look the agent up, write the record, open the files (the session is running meanwhile)."""
        assert self.session_id is not None
        service = self._service
        agent_id = self._config.get("id")
        tools: list[dict[str, Any]] = list(self._inline.get("tools") or [])
        record_flag = self._inline.get("record")
        if isinstance(agent_id, str):
            agent = await service.store.agents.get(self.project_id, agent_id)
            if agent is not None:
                tools = list(agent.get("tools") or [])
                if record_flag is None:
                    record_flag = agent.get("record")
        self._sensitive = sensitive_arguments(tools)
        self.segment = await service.store.sessions.start(
            SessionStart(
                session_id=self.session_id,
                project_id=self.project_id,
                agent_id=agent_id if isinstance(agent_id, str) else None,
                channel=self.channel,
                config=self._config,
                owner=service.owner,
                lease_until=service.lease_until(),
                artifacts=[],
                caller_number=self.caller_number,
                called_number=self.called_number,
                inline_webhook=service.inline_webhook(self._inline.get("webhook"), self.session_id),
            )
        )
        if self.segment == 0 or not service.keeps_artifacts:
            self._entries.clear()
            return
        store = service.artifacts
        spool = store.working_path(self.session_id, f".timeline-{self.segment}.jsonl")
        self._timeline = TimelineSpool(spool)
        early, self._entries = self._entries, []
        for entry in early:
            self._write(entry)
        self._record_audio = service.settings.record_audio and record_flag is not False
        if self._record_audio:
            path = store.working_path(self.session_id, Artifact(AUDIO, self.segment).name)
            try:
                self._audio = TwoTrackRecording(QueuedWriter(OggOpusWriter(path)))
            except RecordingFailed as exc:
                self._audio_failed(str(exc))

    async def finish(self) -> None:
        """The connection is over: finish the artifacts and close the record (idempotent, never raises)."""
        if self._finished:
            return
        self._finished = True
        try:
            async with asyncio.timeout(FINISH_TIMEOUT_SECONDS):
                await self._finish()
        except Exception:
            logger.exception("session history: finishing session %s failed", self.session_id)
        finally:
            self._service.untrack(self)

    async def _finish(self) -> None:
        if self._start_task is None:
            return
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                await asyncio.shield(self._start_task)
        except Exception:
            logger.exception("session history: recording session %s could not start", self.session_id)
            return
        assert self.session_id is not None
        if self.segment == 0:
            return
        reason = self.public_close_reason()
        artifacts: list[dict[str, Any]] = []
        if self._service.keeps_artifacts:
            artifacts = await asyncio.to_thread(self._write_artifacts, reason)
            for artifact in artifacts:
                await self._service.artifacts.publish(self.session_id, artifact["name"])
        resumable = self.channel != PHONE and reason in ("client_disconnected", "server_restarting")
        await self._service.store.sessions.end(
            RecordEnd(
                session_id=self.session_id,
                segment=self.segment,
                reason=reason,
                close_code=self._close_code,
                artifacts=artifacts,
                completed_delay_seconds=self._service.settings.resume_grace_seconds if resumable else 0.0,
            )
        )
        self._service.wake_webhooks()

    def _write_artifacts(self, reason: str) -> list[dict[str, Any]]:
        """Close the audio and the timeline, write the metadata (in a thread: file work)."""
        assert self.session_id is not None
        store = self._service.artifacts
        artifacts: list[Artifact] = []
        if self._audio is not None:
            self._audio.finish()
            if self._audio.failed is not None:
                self._audio_failed(self._audio.failed)
            artifacts.append(Artifact(AUDIO, self.segment, complete=self._audio.failed is None))
        elif self._record_audio and self._audio_failure_reported:
            artifacts.append(Artifact(AUDIO, self.segment, complete=False))
        timeline = Artifact(TIMELINE, self.segment)
        if self._timeline is not None:
            self._timeline.close()
            complete = self._timeline.failed is None
            try:
                assemble(
                    self._timeline.path,
                    store.working_path(self.session_id, timeline.name),
                    self._timeline_header(),
                )
                artifacts.append(Artifact(TIMELINE, self.segment, complete=complete))
            except OSError as exc:
                self._service.count_failure("timeline", exc)
        metadata = Artifact(METADATA, self.segment)
        try:
            path = store.working_path(self.session_id, metadata.name)
            path.write_text(json.dumps(self.metadata(reason), indent=1), "utf-8")
            artifacts.append(metadata)
        except OSError as exc:
            self._service.count_failure("metadata", exc)
        return [artifact.to_record() for artifact in artifacts if artifact.name]

    # --- what the artifacts say ------------------------------------------------------------------------
    def public_close_reason(self) -> str:
        reason = self._close_reason
        if reason and set(reason) <= ERROR_CODE_CHARS:
            return reason  # the error code that ended the session (HOSTED.md §4)
        if self._close_code == SERVER_RESTART:
            return "server_restarting"
        if self._client_ended:
            return "call_ended" if self.channel == PHONE else "client_ended"
        if self._close_code == CloseCode.NORMAL and self._ended is not None:
            return "completed"
        return "call_ended" if self.channel == PHONE else "client_disconnected"

    def metadata(self, reason: str) -> dict[str, Any]:
        ended = time.time()
        started = self._ready_at or self._opened
        audio = self._audio
        return {
            "session_id": self.session_id,
            "segment": self.segment,
            "agent_id": self._config.get("id"),
            "channel": self.channel,
            "caller_number": self.caller_number,
            "called_number": self.called_number,
            "started_at": _stamp(started),
            "ended_at": _stamp(ended),
            "duration_seconds": round(ended - started, 3),
            "session_duration_seconds": None if self._ended is None else self._ended.session_duration_seconds,
            "audio_duration_seconds": None if self._ended is None else self._ended.audio_duration_seconds,
            "public_close_reason": reason,
            "close_code": self._close_code,
            "recording": {
                "audio": self._record_audio,
                "seconds": None if audio is None else round(audio.seconds, 3),
                "complete": audio is not None and audio.failed is None,
            },
        }

    def _timeline_header(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "segment": self.segment,
            "connected_at": _stamp(self._opened),
            "time_unit": "seconds since the connection opened",
        }

    # --- internals ---------------------------------------------------------------------------------------
    def _now(self) -> float:
        return round(time.monotonic() - self._opened_monotonic, 3)

    def _add(self, entry: dict[str, Any]) -> None:
        entry.setdefault("t", self._now())
        if self._timeline is not None:
            self._write(entry)
        elif self._start_task is None or not self._start_task.done():
            if len(self._entries) < MAX_EARLY_ENTRIES:
                self._entries.append(entry)

    def _write(self, entry: dict[str, Any]) -> None:
        if entry.get("type") == "tool.call":  # written before the agent's sensitive arguments were known
            sensitive = self._sensitive.get(str(entry.get("name")), frozenset())
            entry["arguments"] = redact_arguments(entry.get("arguments"), sensitive)
            entry["args"] = redact_arguments(entry.get("args"), sensitive)
        assert self._timeline is not None
        self._timeline.add(entry)

    def _check_audio(self) -> None:
        if self._audio is not None and self._audio.failed is not None and not self._audio_failure_reported:
            self._audio_failed(self._audio.failed)

    def _audio_failed(self, reason: str) -> None:
        if self._audio_failure_reported:
            return
        self._audio_failure_reported = True
        logger.error("session %s: recording the audio failed (%s); the call goes on", self.session_id, reason)
        self._service.count_failure("audio", None)
        self._add({"from": "voxgate", "type": "recording.failed", "artifact": AUDIO, "error": reason})


class RecordingSink:
    """A session's sink that shows every event and the close to its recorder, then passes them on."""

    def __init__(self, sink: EventSink, recorder: SessionRecorder) -> None:
        self._sink = sink
        self._recorder = recorder

    async def send(self, event: ServerEvent) -> None:
        self._recorder.server_event(event)
        await self._sink.send(event)

    async def close(self, code: int, reason: str = "") -> None:
        self._recorder.closed(code, reason)
        await self._sink.close(code, reason)


def _encoding(section: Any, default: str) -> str:
    if isinstance(section, dict) and isinstance(section.get("format"), dict):
        encoding = section["format"].get("encoding")
        if isinstance(encoding, str):
            return encoding
    return default


def _stamp(epoch: float) -> str:
    return format_timestamp(datetime.fromtimestamp(epoch, UTC))
