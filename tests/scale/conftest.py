"""Fixtures for several voxgate processes sharing one real PostgreSQL and one real Redis.

Every module gets a PostgreSQL database of its own (created and dropped here) and a Redis key prefix of
its own in a dedicated Redis database number, so runs never see each other's state. The servers are real
``python -m voxgate serve`` processes (tests/live_server.py) with the deterministic speech doubles.

``VOXGATE_TEST_POSTGRES_URL`` (default: the local server, database ``test``, user ``postgres``) and
``VOXGATE_TEST_REDIS_URL`` (default: ``redis://127.0.0.1:6379/11``) choose the servers; when one does not
answer, the tests that need it are skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.live_server import LiveServer
from tests.realtime.conftest import INSTANT_AUDIO_ENV, doubles_env
from tests.realtime.protocol_client import ProtocolClient

POSTGRES_URL = os.environ.get(
    "VOXGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("VOXGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
GRACE_SECONDS = 10.0
LEASE_SECONDS = 1.5


async def _postgres_admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _redis_answers(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def delete_prefixed(url: str, prefix: str) -> int:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (asyncpg URL)."""
    name = "vg_scale_" + secrets.token_hex(6)
    try:
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is not there: nothing to test against
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not available: {exc}")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    """A key prefix of this module's own in the test Redis database; its keys are deleted afterwards."""
    if not asyncio.run(_redis_answers(REDIS_URL)):
        pytest.skip(f"Redis at {REDIS_URL} is not available")
    prefix = "vgtest-" + secrets.token_hex(6)
    yield prefix
    asyncio.run(delete_prefixed(REDIS_URL, prefix))


@dataclass
class Cluster:
    """Named voxgate instances sharing a database, a Redis, an API key and a secret key."""

    root: Path
    env: dict[str, str]
    api_key: str = field(default_factory=lambda: "vg_test_" + secrets.token_urlsafe(24))
    servers: dict[str, LiveServer] = field(default_factory=dict)

    def start(self, name: str, **extra_env: str) -> LiveServer:
        env = {**self.env, "VOXGATE_INSTANCE_ID": name, **extra_env}
        server = LiveServer(self.root / name, api_key=self.api_key, env=env)
        self.servers[name] = server
        return server.start()

    def __getitem__(self, name: str) -> LiveServer:
        return self.servers[name]

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


def cluster_env(database_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return doubles_env(
        VOXGATE_DATABASE_URL=database_url,
        VOXGATE_REDIS_URL=redis_url,
        VOXGATE_REDIS_KEY_PREFIX=prefix,
        VOXGATE_SECRET_KEY="scale-test-" + secrets.token_hex(16),
        VOXGATE_RESUME_GRACE_SECONDS=str(GRACE_SECONDS),
        VOXGATE_SESSION_LEASE_SECONDS=str(LEASE_SECONDS),
        **INSTANT_AUDIO_ENV,
        **extra,
    )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_prefix: str
) -> Iterator[Cluster]:
    """Instances ``a`` and ``b`` (started); tests may start more with ``cluster.start(name)``."""
    group = Cluster(tmp_path_factory.mktemp("cluster"), cluster_env(postgres_url, REDIS_URL, redis_prefix))
    try:
        group.start("a")
        group.start("b")
        yield group
    finally:
        group.stop_all()


@pytest.fixture
async def clients() -> AsyncIterator[list[ProtocolClient]]:
    """Append opened ProtocolClients here; they are closed after the test."""
    opened: list[ProtocolClient] = []
    yield opened
    for client in opened:
        await client.connection.close()


async def open_client(
    server: LiveServer, opened: list[ProtocolClient], *, query: str = "", authenticated: bool = True
) -> ProtocolClient:
    url = server.ws_url + (f"?{query}" if query else "")
    client = await ProtocolClient.open(url, headers=server.auth_headers() if authenticated else {})
    opened.append(client)
    return client
