"""The app-wide side of session history (``app.state.history``), started with the instance.

- hands out a :class:`~voxgate.history.recorder.SessionRecorder` per connection and routes each finished
  turn's latency figures (conversation.timings) to its session's recorder;
- renews the leases of this process's live records; closes the records of processes that stopped (at
  start-up and every sweep), salvaging what they wrote (the audio so far, the timeline spool);
- the retention sweep (``VOXGATE_RETENTION_DAYS``);
- the webhook worker (history.webhook_worker).

    history = start_history(app)     # in the lifespan, after the store opened
    recorder = history.recorder(project_id, "websocket")
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI

from voxgate.config import Settings
from voxgate.conversation.dependencies import EventSink
from voxgate.conversation.timings import TurnTimings
from voxgate.history.artifacts import (
    AUDIO,
    METADATA,
    TIMELINE,
    Artifact,
    ArtifactStore,
    DirectoryArtifactStore,
)
from voxgate.history.links import SIGNING_PURPOSE, ArtifactLinks
from voxgate.history.ownership import owner_is_dead, owner_token
from voxgate.history.recorder import SessionRecorder
from voxgate.history.timeline import assemble
from voxgate.history.webhook_events import SESSION_WEBHOOK_EVENTS, webhook_problem
from voxgate.history.webhook_worker import WebhookWorker
from voxgate.outbound.policy import OutboundPolicy
from voxgate.store import Store
from voxgate.store.tables import SessionRecordRow, utc_now
from voxgate.store.webhook_outbox import RetryPolicy
from voxgate.telemetry.history_counts import count_history_failure

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
LEASE_RENEW_SECONDS = 20.0
SPOOL_PATTERN = re.compile(r"\.timeline-([0-9]+)\.jsonl")
ARTIFACT_FILE = re.compile(r"(audio|timeline|metadata)(?:-([0-9]+))?\.(ogg|json)")


class HistoryService:
    def __init__(self, settings: Settings, store: Store, artifacts: ArtifactStore | None = None) -> None:
        self.settings = settings
        self.store = store
        links = ArtifactLinks(store.box.derive_key(SIGNING_PURPOSE), settings.artifact_link_seconds)
        self.artifacts: ArtifactStore = artifacts or DirectoryArtifactStore(
            settings.effective_artifacts_dir, links
        )
        self.owner = owner_token(settings.instance_id)
        self.policy = OutboundPolicy.allowing(settings.http_tools_allowed_hosts)
        self.retry = RetryPolicy(base_seconds=settings.webhook_retry_base_seconds)
        self.worker = WebhookWorker(
            store,
            self.policy,
            self.retry,
            instance=self.owner,
            timeout_seconds=settings.webhook_timeout_seconds,
            poll_seconds=settings.webhook_poll_seconds,
        )
        self._live: dict[str, SessionRecorder] = {}

    @property
    def keeps_artifacts(self) -> bool:
        return self.settings.retention_days > 0

    # --- recorders ---------------------------------------------------------------------------------------
    def recorder(
        self,
        project_id: str,
        channel: str,
        *,
        caller_number: str | None = None,
        called_number: str | None = None,
    ) -> SessionRecorder:
        return SessionRecorder(
            self, project_id, channel, caller_number=caller_number, called_number=called_number
        )

    def track(self, recorder: SessionRecorder) -> None:
        if recorder.session_id is not None:
            self._live[recorder.session_id] = recorder

    def untrack(self, recorder: SessionRecorder) -> None:
        if recorder.session_id is not None and self._live.get(recorder.session_id) is recorder:
            del self._live[recorder.session_id]

    def lease_until(self) -> datetime:
        return utc_now() + timedelta(seconds=LEASE_SECONDS)

    def inline_webhook(self, raw: Any, session_id: str) -> dict[str, Any] | None:
        """The ``webhook`` of ``session.update`` as stored (secret encrypted), or None when absent or
        unusable (logged: the session goes on without it)."""
        if raw is None:
            return None
        problem = webhook_problem(raw, self.policy)
        if problem is not None:
            logger.warning("session %s: its inline webhook is ignored: %s", session_id, problem)
            return None
        secret = raw.get("secret")
        return {
            "url": raw["url"],
            "events": [event for event in raw.get("events") or SESSION_WEBHOOK_EVENTS],
            "secret": self.store.box.encrypt(secret) if secret else None,
        }

    def wake_webhooks(self) -> None:
        self.worker.wake()

    def count_failure(self, artifact: str, exc: BaseException | None) -> None:
        count_history_failure(artifact)
        if exc is not None:
            logger.error("session history: writing the %s artifact failed: %s", artifact, exc)

    # --- maintenance -------------------------------------------------------------------------------------
    async def renew_leases(self) -> None:
        await self.store.sessions.renew_leases(list(self._live), self.owner, self.lease_until())

    async def close_orphans(self) -> int:
        """Close the records of stopped processes, keeping what they wrote (marked incomplete)."""
        instance = self.settings.instance_id
        rows = await self.store.sessions.close_orphans(lambda owner: owner_is_dead(owner, instance))
        for row in rows:
            logger.warning("session %s was left active by a stopped process; closed it", row.id)
            try:
                artifacts = await asyncio.to_thread(self._salvage, row)
                if artifacts:
                    await self.store.sessions.set_artifacts(row.id, artifacts)
            except Exception:
                logger.exception("could not salvage the artifacts of session %s", row.id)
        if rows:
            self.wake_webhooks()
        return len(rows)

    def _salvage(self, row: SessionRecordRow) -> list[dict[str, Any]]:
        known = {artifact.get("name") for artifact in row.artifacts}
        found: list[dict[str, Any]] = []
        for path in self.artifacts.working_files(row.id):
            if (spool := SPOOL_PATTERN.fullmatch(path.name)) is not None:
                segment = int(spool.group(1))
                timeline = Artifact(TIMELINE, segment, complete=False)
                header = {"session_id": row.id, "segment": segment, "incomplete": True}
                assemble(path, self.artifacts.working_path(row.id, timeline.name), header)
                found.append(timeline.to_record())
            elif (match := ARTIFACT_FILE.fullmatch(path.name)) is not None and path.name not in known:
                kind, segment = match.group(1), int(match.group(2) or 1)
                if kind != METADATA:
                    found.append(Artifact(kind, segment, complete=False).to_record())
        return [artifact for artifact in found if artifact["type"] in (AUDIO, TIMELINE)]

    async def sweep_retention(self) -> int:
        """Delete the sessions (records, artifacts) and finished deliveries older than the retention."""
        cutoff = utc_now() - timedelta(days=self.settings.retention_days)
        removed = 0
        while ids := await self.store.sessions.ended_before(cutoff):
            for session_id in ids:
                await self.artifacts.delete_session(session_id)
            await self.store.sessions.delete_ids(ids)
            removed += len(ids)
        await self.store.outbox.delete_finished_before(cutoff)
        return removed

    async def delete_session(self, project_id: str, session_id: str) -> bool:
        if not await self.store.sessions.delete(project_id, session_id):
            return False
        await self.artifacts.delete_session(session_id)
        return True

    async def _every(self, seconds: float, work: Callable[[], Awaitable[Any]], name: str) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception as exc:
                logger.warning("session history: %s failed: %s", name, exc)

    async def _maintain(self) -> None:
        await self.close_orphans()
        await self.sweep_retention()

    async def start(self, app: FastAPI) -> None:
        """Close what stopped processes left, then run the background work until the app stops."""
        try:
            await self._maintain()
        except Exception as exc:  # not fatal: the next sweep tries again
            logger.warning("session history: start-up check failed: %s", exc)
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(self.worker.run(), name="webhook-worker"),
            loop.create_task(
                self._every(LEASE_RENEW_SECONDS, self.renew_leases, "lease renewal"), name="leases"
            ),
            loop.create_task(
                self._every(self.settings.retention_sweep_seconds, self._maintain, "sweep"),
                name="history-sweep",
            ),
        ]

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        app.state.shutdown_callbacks.append(stop)


async def start_history(app: FastAPI) -> HistoryService:
    """Create ``app.state.history`` and start its background work (called by the app's start-up)."""
    service = HistoryService(app.state.settings, app.state.store)
    app.state.history = service
    await service.start(app)
    return service


class NullRecorder:
    """What a connection records when the app has no history service (an app built without its
    lifespan, in tests): nothing."""

    def wrap_sink(self, sink: EventSink) -> EventSink:
        return sink

    def client_input(self, item: object) -> None:
        return None

    def observe_pushes(self, session: Any) -> None:
        return None

    def turn(self, timings: TurnTimings) -> None:
        return None

    async def finish(self) -> None:
        return None


def session_recorder(
    state: Any,
    project_id: str,
    channel: str,
    *,
    caller_number: str | None = None,
    called_number: str | None = None,
) -> SessionRecorder | NullRecorder:
    """The recorder of one connection of ``project_id`` (see history.recorder)."""
    service = history_of(state)
    if service is None:
        return NullRecorder()
    return service.recorder(project_id, channel, caller_number=caller_number, called_number=called_number)


def history_of(state: Any) -> HistoryService | None:
    """The app's history service, or None (a server that is starting, or a test app without it)."""
    return getattr(state, "history", None)
