"""The same server on PostgreSQL (VOXGATE_DATABASE_URL), in a database created for this test."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.concurrent_updates import assert_parallel_updates_all_land
from tests.api.conftest import agent_body
from tests.conftest import ServerFactory

POSTGRES_URL = os.environ.get("VOXGATE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.postgres


async def _admin(statement: str) -> None:
    assert POSTGRES_URL is not None
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("VOXGATE_TEST_POSTGRES_URL is not set")
    name = "vg_test_" + secrets.token_hex(6)
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_server_on_postgres_migrates_serves_and_keeps_agents(
    live_server_factory: ServerFactory, postgres_database_url: str
) -> None:
    server = live_server_factory(env={"VOXGATE_DATABASE_URL": postgres_database_url})
    assert not (server.data_dir / "voxgate.db").exists()
    with server.client() as client:
        record = client.post("/v1/agents", json=agent_body()).json()
        assert set(record["tools"][0]["http"]["headers"][0]) == {"name", "last_set_at"}
        first_page = client.get("/v1/agents", params={"limit": 1}).json()
        assert [a["id"] for a in first_page["agents"]] == [record["id"]] and not first_page["has_more"]
        assert client.get("/v1/token").status_code == 200
        assert client.post("/v1/agents", json={"name": "x\u0000"}).status_code == 422
    server.restart()
    with server.client() as client:
        assert client.get(f"/v1/agents/{record['id']}").json() == record
        assert client.get("/v1/agents/%00").status_code == 404


def test_parallel_partial_updates_all_land_on_postgres(
    live_server_factory: ServerFactory, postgres_database_url: str
) -> None:
    server = live_server_factory(env={"VOXGATE_DATABASE_URL": postgres_database_url})
    assert_parallel_updates_all_land(server)
