"""Session-history fixtures: a real voxgate server with the speech doubles, short artifact links and quick
webhook retries, and helpers to read a session's record once its connection ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import INSTANT_AUDIO_ENV, doubles_env
from tests.realtime.protocol_client import ProtocolClient

LINK_SECONDS = 4
HISTORY_ENV = {
    **INSTANT_AUDIO_ENV,
    "VOXGATE_ARTIFACT_LINK_SECONDS": str(LINK_SECONDS),
    "VOXGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.3",
    "VOXGATE_WEBHOOK_POLL_SECONDS": "0.2",
    "VOXGATE_WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(scope="package")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("history"), env=doubles_env(**HISTORY_ENV))
    with server:
        yield server


@pytest.fixture
async def clients() -> AsyncIterator[list[ProtocolClient]]:
    opened: list[ProtocolClient] = []
    yield opened
    for client in opened:
        await client.connection.close()


async def open_client(
    server: LiveServer, opened: list[ProtocolClient], headers: dict[str, str] | None = None
) -> ProtocolClient:
    client = await ProtocolClient.open(server.ws_url, headers=headers or server.auth_headers())
    opened.append(client)
    return client


async def ended_session(
    server: LiveServer, session_id: str, headers: dict[str, str] | None = None, within: float = 15.0
) -> dict[str, Any]:
    """``GET /v1/sessions/{id}`` once the record says ``ended`` (it is closed right after the connection)."""
    async with server.async_client(headers=headers or server.auth_headers()) as http:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            response = await http.get(f"/v1/sessions/{session_id}")
            if response.status_code == 200 and response.json()["status"] == "ended":
                return response.json()  # type: ignore[no-any-return]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"session {session_id} did not end: {response.text}")
            await asyncio.sleep(0.05)  # polling a REST resource: there is no event to await


async def deliveries_when(
    server: LiveServer,
    session_id: str,
    ready: Callable[[list[dict[str, Any]]], bool],
    headers: dict[str, str] | None = None,
    within: float = 15.0,
) -> list[dict[str, Any]]:
    """The session's webhook deliveries once ``ready(deliveries)`` holds (outcomes are recorded after the
    receiver answered, so a test that saw the request polls for the record)."""
    path = f"/v1/sessions/{session_id}/webhook-deliveries"
    async with server.async_client(headers=headers or server.auth_headers()) as http:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            deliveries: list[dict[str, Any]] = (await http.get(path)).json()["deliveries"]
            if ready(deliveries):
                return deliveries
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"deliveries of {session_id}: {deliveries}")
            await asyncio.sleep(0.05)  # polling a REST resource: there is no event to await
