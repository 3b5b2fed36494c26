"""PostgreSQL or Redis unavailable: clear errors in the protocol's shapes, no crash, recovery after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.api.conftest import agent_body
from tests.metrics_polling import poll_until
from tests.realtime.conftest import utterance
from tests.realtime.protocol_client import ProtocolClient
from tests.scale.conftest import REDIS_URL, Cluster, cluster_env, open_client
from tests.scale.outage_tools import PrivateRedis, TcpProxy


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def postgres_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy
    proxy.close()


async def test_redis_outage_reports_internal_error_keeps_talking_and_recovers(
    tmp_path: Path,
    postgres_url: str,
    redis_prefix: str,
    private_redis: PrivateRedis,
    clients: list[ProtocolClient],
) -> None:
    group = Cluster(tmp_path / "instances", cluster_env(postgres_url, private_redis.url, redis_prefix))
    try:
        x, y = group.start("x"), group.start("y")
        talking = await open_client(x, clients)
        await talking.update(system_prompt="plain", greeting="Hello from before.")
        session_id = (await talking.wait_for("session.ready"))["session_id"]
        await talking.wait_for("reply.done")

        private_redis.stop()
        # The live conversation goes on; the lost checkpoint is reported once per turn boundary.
        await talking.send_audio(utterance("hello there"))
        error = await talking.wait_for("session.error")
        assert error["code"] == "internal_error" and "storage" in error["message"]
        assert (await talking.wait_for("transcript.agent"))["text"] == "You said hello there."
        # A new session still starts (with the same warning), a resume waits on an open connection.
        fresh = await open_client(y, clients)
        await fresh.update()
        assert (await fresh.next_event())["code"] == "internal_error"
        assert (await fresh.next_event())["type"] == "session.ready"
        waiting = await open_client(y, clients)
        await waiting.send({"type": "session.resume", "session_id": session_id})
        refused = await waiting.expect_error("internal_error")
        assert "session.resume again" in refused["message"]
        # REST does not need Redis.
        async with x.async_client() as rest:
            assert (await rest.get("/v1/agents")).status_code == 200
        assert x.running and y.running

        private_redis.start()  # empty: nothing survived the outage
        await talking.send_audio(utterance("okay"))
        assert (await talking.wait_for("transcript.agent"))["text"] == "You said okay."
        mark = talking.mark()
        await talking.connection.close()
        assert "session.error" not in talking.types(mark)
        # A session still attached on x is not resumable (session_not_found): wait until x has noticed the
        # close and checkpointed the session as detached (a resume sent at once lost that race under load).
        await poll_until(x, lambda scraped: scraped.value("voxgate_sessions_active") == 0)
        # The same waiting connection now resumes the session, with the whole conversation.
        await waiting.send({"type": "session.resume", "session_id": session_id})
        assert (await waiting.wait_for("session.ready"))["session_id"] == session_id
        await waiting.send_audio(utterance("what did you say before"))
        answer = await waiting.wait_for("transcript.agent")
        assert answer["text"] == "Before I said: Hello from before. | You said hello there. | You said okay.."
    finally:
        group.stop_all()


async def test_postgres_outage_gives_503_and_internal_error_then_recovers(
    tmp_path: Path,
    postgres_url: str,
    redis_prefix: str,
    postgres_proxy: TcpProxy,
    clients: list[ProtocolClient],
) -> None:
    proxied = make_url(postgres_url).set(host="127.0.0.1", port=postgres_proxy.port)
    env = cluster_env(proxied.render_as_string(hide_password=False), REDIS_URL, redis_prefix)
    group = Cluster(tmp_path / "instances", env)
    try:
        server = group.start("z")
        async with server.async_client() as rest:
            agent = (await rest.post("/v1/agents", json=agent_body(name="durable"))).json()
        talking = await open_client(server, clients)
        await talking.update(system_prompt="plain")
        await talking.wait_for("session.ready")

        postgres_proxy.cut()
        async with server.async_client() as rest:
            for method, path in (("GET", "/v1/agents"), ("POST", "/v1/agents"), ("GET", "/v1/token")):
                response = await rest.request(method, path, json=agent_body() if method == "POST" else None)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["code"] == "unavailable" and response.json()["detail"]
            assert (await rest.get("/healthz")).status_code == 503
        refused = await open_client(server, clients)
        error = await refused.expect_error("internal_error")
        assert "database" in error["message"]
        assert await refused.wait_closed() == 1011
        # A session that is already running does not need the database.
        await talking.send_audio(utterance("hello there"))
        assert (await talking.wait_for("transcript.agent"))["text"] == "You said hello there."
        assert server.running

        postgres_proxy.restore()
        async with server.async_client() as rest:
            assert (await rest.get(f"/v1/agents/{agent['id']}")).json() == agent
            assert (await rest.get("/healthz")).status_code == 200
        again = await open_client(server, clients)
        await again.update(agent_id=agent["id"])
        assert (await again.wait_for("session.ready"))["session_id"]
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
            assert (await anonymous.get("/v1/agents")).status_code == 401
    finally:
        group.stop_all()
