"""Two voxgate instances on one PostgreSQL: every webhook delivery is sent exactly once (the outbox is
claimed in the database), and a session's record is readable from either instance."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.history.conftest import deliveries_when, ended_session
from tests.history.webhook_receiver import WebhookReceiver
from tests.scale.conftest import REDIS_URL, Cluster, ProtocolClient, cluster_env, open_client

SECRET = "cluster-" + "c" * 40
SESSIONS_PER_INSTANCE = 4


@pytest.fixture(scope="module")
def history_cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_prefix: str
) -> Iterator[Cluster]:
    env = cluster_env(
        postgres_url,
        REDIS_URL,
        redis_prefix,
        VOXGATE_WEBHOOK_POLL_SECONDS="0.05",
        VOXGATE_WEBHOOK_RETRY_BASE_SECONDS="0.3",
    )
    group = Cluster(tmp_path_factory.mktemp("history-cluster"), env)
    try:
        group.start("a")
        group.start("b")
        yield group
    finally:
        group.stop_all()


async def _session(cluster: Cluster, name: str, opened: list[ProtocolClient]) -> str:
    client = await open_client(cluster[name], opened)
    await client.update(system_prompt="Be brief.")
    session_id = str((await client.wait_for("session.ready"))["session_id"])
    await client.send({"type": "session.end"})
    await client.wait_closed()
    return session_id


async def test_each_delivery_is_sent_once_by_one_of_two_instances(
    history_cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    a, b = history_cluster["a"], history_cluster["b"]
    with WebhookReceiver(SECRET) as receiver:
        async with a.async_client() as http:
            response = await http.post(
                "/v1/webhook-subscriptions",
                json={
                    "url": receiver.url,
                    "events": ["session.started", "session.completed"],
                    "secret": SECRET,
                },
            )
            assert response.status_code == 201, response.text
        names = ["a", "b"] * SESSIONS_PER_INSTANCE
        session_ids = await asyncio.gather(*(_session(history_cluster, name, clients) for name in names))
        expected = 2 * len(session_ids)
        await receiver.wait_for(expected)
        for session_id in session_ids:
            await ended_session(b, session_id)  # either instance reads every record
            await deliveries_when(
                a,
                session_id,
                lambda found: len(found) == 2 and all(d["status"] == "delivered" for d in found),
            )
        received = list(receiver.received)
    counts = Counter(request.delivery_id for request in received)
    assert len(received) == expected and set(counts.values()) == {1}, counts
    assert Counter((r.event["type"], r.event["data"]["id"]) for r in received) == Counter(
        {
            (kind, session_id): 1
            for session_id in session_ids
            for kind in ("session.started", "session.completed")
        }
    )
    assert all(request.verified for request in received)
