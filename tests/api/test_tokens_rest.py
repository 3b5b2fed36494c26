from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.live_server import LiveServer
from voxgate.config import Settings
from voxgate.store import Store


def _redeem_in_server_database(server: LiveServer, token: str) -> list[object]:
    """Redeem ``token`` twice, concurrently, straight in the server's database (what /v1/ws will do)."""

    async def redeem() -> list[object]:
        store = await Store.open(Settings(_env_file=None, data_dir=server.data_dir))  # type: ignore[call-arg]
        try:
            return list(await asyncio.gather(store.tokens.redeem(token), store.tokens.redeem(token)))
        finally:
            await store.close()

    return asyncio.run(redeem())


def test_default_token(client: httpx.Client) -> None:
    before = datetime.now(UTC)
    response = client.get("/v1/token")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_in_seconds", "expires_at"}
    assert body["expires_in_seconds"] == 60
    assert body["expires_at"].endswith("Z")
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=55) < expires_at - before < timedelta(seconds=65)
    assert len(body["token"]) >= 32


def test_tokens_are_unique(client: httpx.Client) -> None:
    assert len({client.get("/v1/token").json()["token"] for _ in range(5)}) == 5


@pytest.mark.parametrize(
    ("params", "expires_in"),
    [
        ({"expires_in_seconds": 1}, 1),
        ({"expires_in_seconds": 600}, 600),
        ({"expires_in_seconds": "300", "max_session_duration_seconds": 60}, 300),
        ({"max_session_duration_seconds": 10800}, 60),
        ({"product": "voice_agent", "whatever": "x"}, 60),
    ],
)
def test_valid_parameters(client: httpx.Client, params: dict[str, object], expires_in: int) -> None:
    response = client.get("/v1/token", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in_seconds"] == expires_in


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": 601}, "expires_in_seconds"),
        ({"expires_in_seconds": -5}, "expires_in_seconds"),
        ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
        ({"expires_in_seconds": "1.5"}, "expires_in_seconds"),
        ({"max_session_duration_seconds": 59}, "max_session_duration_seconds"),
        ({"max_session_duration_seconds": 10801}, "max_session_duration_seconds"),
        ({"max_session_duration_seconds": "' OR 1=1"}, "max_session_duration_seconds"),
    ],
)
def test_out_of_range_parameters_are_422(client: httpx.Client, params: dict[str, object], param: str) -> None:
    response = client.get("/v1/token", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_value" and body["param"] == param
    assert body["detail"][0]["loc"] == ["query", param]


def test_minted_token_is_redeemable_exactly_once_with_its_session_cap(
    live_server: LiveServer, client: httpx.Client
) -> None:
    token = client.get("/v1/token", params={"max_session_duration_seconds": 120}).json()["token"]
    results = _redeem_in_server_database(live_server, token)
    grants = [result for result in results if result is not None]
    assert len(grants) == 1
    assert grants[0].max_session_duration_seconds == 120  # type: ignore[attr-defined]
