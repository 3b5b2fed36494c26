"""The webhook outbox on SQLite and PostgreSQL: deliveries written with the record change, claimed by one
claimer at a time, retried with backoff and given up after the window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from voxgate.store import Store
from voxgate.store.paging import PageRequest
from voxgate.store.session_records import SessionEnd, SessionStart
from voxgate.store.webhook_outbox import AttemptOutcome, RetryPolicy
from voxgate.store.webhook_subscriptions import SubscriptionFields

SECRET = "o" * 40


async def _start(store: Store, project: str, session_id: str, agent_id: str | None = None) -> None:
    await store.sessions.start(
        SessionStart(
            session_id=session_id,
            project_id=project,
            agent_id=agent_id,
            channel="websocket",
            config={},
            owner="test|1|x",
            lease_until=datetime.now(UTC),
            artifacts=[],
        )
    )


async def _subscribe(store: Store, project: str, events: list[str], agent_id: str | None = None) -> str:
    created = await store.webhooks.create(
        project,
        SubscriptionFields(url="https://hooks.example.com", events=events, secret=SECRET, agent_id=agent_id),
    )
    return str(created["id"])


def _outcome(status: int | None) -> AttemptOutcome:
    return AttemptOutcome(datetime.now(UTC), 5.0, status, None if status == 200 else "nope")


async def test_record_changes_enqueue_their_events_for_matching_subscriptions(store: Store) -> None:
    project = await store.keys.ensure_project("outbox")
    everything = await _subscribe(store, project, ["session.started", "session.completed"])
    await _subscribe(store, project, ["session.completed"], agent_id="agent_other")
    await _subscribe(store, project, ["call.ended"])
    await _start(store, project, "sess_a", agent_id="agent_mine")
    await store.sessions.end(SessionEnd("sess_a", 1, "client_ended", 1000, []))
    claimed = await store.outbox.claim("i1", limit=10, lease_seconds=30)
    assert len(claimed) == 2 and all(d.secret == SECRET for d in claimed)
    page = await store.outbox.list_for_session(project, "sess_a", PageRequest())
    assert {d["event_type"] for d in page.rows} == {"session.started", "session.completed"}
    assert {d["subscription_id"] for d in page.rows} == {everything}


async def test_concurrent_claims_never_share_a_delivery(store: Store) -> None:
    project = await store.keys.ensure_project("claims")
    await _subscribe(store, project, ["session.started"])
    for index in range(30):
        await _start(store, project, f"sess_{index}")
    batches = await asyncio.gather(
        *(store.outbox.claim(f"i{n}", limit=7, lease_seconds=30) for n in range(6))
    )
    ids = [delivery.id for batch in batches for delivery in batch]
    assert len(ids) == len(set(ids))
    rest = await store.outbox.claim("late", limit=100, lease_seconds=30)
    assert len(ids) + len(rest) == 30 and not set(ids) & {d.id for d in rest}
    assert await store.outbox.claim("again", limit=100, lease_seconds=30) == []  # all leased


@pytest.mark.parametrize(("attempts", "delay"), [(1, 15.0), (2, 30.0), (5, 240.0), (9, 3600.0), (30, 3600.0)])
def test_retry_backoff(attempts: int, delay: float) -> None:
    assert RetryPolicy().next_delay(attempts) == delay


async def test_a_failed_attempt_is_retried_until_the_window_closes(store: Store) -> None:
    project = await store.keys.ensure_project("retries")
    await _subscribe(store, project, ["session.started"])
    await _start(store, project, "sess_r")
    quick = RetryPolicy(base_seconds=0.0, max_interval_seconds=0.0)
    [delivery] = await store.outbox.claim("i", limit=5, lease_seconds=30)
    assert await store.outbox.finish_attempt(delivery, _outcome(500), quick, "i") == "pending"
    [again] = await store.outbox.claim("i", limit=5, lease_seconds=30)
    assert again.id == delivery.id and again.attempt == 2
    closed = RetryPolicy(base_seconds=30 * 3600.0, max_interval_seconds=30 * 3600.0)  # past the window
    assert await store.outbox.finish_attempt(again, _outcome(None), closed, "i") == "failed"
    assert await store.outbox.finish_attempt(again, _outcome(200), closed, "i") == "lost"  # claim is gone
    attempts = await store.outbox.attempts(delivery.id)
    assert [(a.attempt, a.http_status_code) for a in attempts] == [(1, 500), (2, None)]
