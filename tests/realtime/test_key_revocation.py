"""A revoked API key stops its live sessions too (issue #19): a session opened with the key, or with a
one-time token the key minted, gets ``unauthorized`` and close 1008 within the recheck interval; sessions
of other keys go on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env
from tests.realtime.protocol_client import ProtocolClient
from voxgate.store.keys import KEY_PREFIX_CHARS

RECHECK_SECONDS = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = doubles_env(VOXGATE_CREDENTIAL_RECHECK_SECONDS=str(RECHECK_SECONDS))
    with LiveServer(tmp_path_factory.mktemp("revocation"), env=env) as live:
        yield live


async def _ready(server: LiveServer, *, key: str | None = None, token: str | None = None) -> ProtocolClient:
    query = f"?token={token}" if token else ""
    headers = {} if token else server.auth_headers(key)
    client = await ProtocolClient.open(f"{server.ws_url}{query}", headers=headers)
    await client.update(system_prompt="Be brief.")
    await client.wait_for("session.ready")
    return client


def _revoke(server: LiveServer, key: str) -> None:
    server.cli("keys", "revoke", key[:KEY_PREFIX_CHARS])


async def test_revoking_a_key_ends_its_sessions_and_tokens_but_not_other_keys(server: LiveServer) -> None:
    doomed = server.create_api_key(project="shared")
    other = server.create_api_key(project="shared")
    async with server.async_client(headers=server.auth_headers(doomed)) as rest:
        token = (await rest.get("/v1/token")).json()["token"]
        unredeemed = (await rest.get("/v1/token")).json()["token"]
    by_key = await _ready(server, key=doomed)
    by_token = await _ready(server, token=token)
    bystander = await _ready(server, key=other)
    _revoke(server, doomed)
    for client in (by_key, by_token):
        error = await client.expect_error("unauthorized", within=10)
        assert "revoked" in error["message"]
        assert await client.wait_closed() == 1008
    await bystander.update(system_prompt="Still here.")
    assert (await bystander.wait_for("session.updated"))["type"] == "session.updated"
    await bystander.connection.close()
    late = await ProtocolClient.open(f"{server.ws_url}?token={unredeemed}")
    await late.expect_error("unauthorized")
    assert await late.wait_closed() == 1008
