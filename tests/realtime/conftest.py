"""Realtime fixtures: a real voxgate server process with deterministic speech doubles, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import numpy as np
import pytest

from tests.doubles import DOUBLES_ENV, PHRASE_TONES, tone
from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.realtime.protocol_client import ProtocolClient

RESUME_GRACE_SECONDS = 3

Connect = Callable[..., Awaitable[ProtocolClient]]

INSTANT_AUDIO_ENV = {"VOXGATE_INPUT_RATE_BURST_SECONDS": "3600"}
"""For servers of tests that push whole utterances at once (``ProtocolClient.send_audio``), far faster
than real time: they lift the input-rate limit explicitly. test_limits.py tests the default."""


def doubles_env(**extra: str) -> dict[str, str]:
    return {
        **DOUBLES_ENV,
        "PYTHONPATH": SERVER_PYTHONPATH,
        "VOXGATE_RESUME_GRACE_SECONDS": str(RESUME_GRACE_SECONDS),
        "VOXGATE_HTTP_TOOLS_ALLOWED_HOSTS": "127.0.0.1",
        **extra,
    }


@pytest.fixture(scope="package")
def rt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("rt"), env=doubles_env(**INSTANT_AUDIO_ENV))
    with server:
        yield server


@pytest.fixture
async def connect(rt_server: LiveServer) -> AsyncIterator[Connect]:
    """``await connect(server=rt_server, headers=None, path="/v1/ws", query="")`` -> open ProtocolClient."""
    clients: list[ProtocolClient] = []

    async def open_client(
        server: LiveServer | None = None,
        *,
        headers: dict[str, str] | None = None,
        path: str = "/v1/ws",
        query: str = "",
    ) -> ProtocolClient:
        target = server or rt_server
        url = f"ws://{target.host}:{target.port}{path}{'?' + query if query else ''}"
        client = await ProtocolClient.open(url, headers=target.auth_headers() if headers is None else headers)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.connection.close()


def utterance(
    phrase: str, *, speech_ms: float = 900, silence_ms: float = 1300, lead_ms: float = 100
) -> np.ndarray:
    """A marker-tone "utterance" the tone STT double decodes as ``phrase``, framed by silence."""
    return np.concatenate(
        [
            np.zeros(int(16 * lead_ms), np.float32),
            tone(PHRASE_TONES[phrase], speech_ms),
            np.zeros(int(16 * silence_ms), np.float32),
        ]
    )


def silence(milliseconds: float) -> np.ndarray:
    return np.zeros(int(16 * milliseconds), np.float32)


async def ready_client(connect: Connect, **session: object) -> tuple[ProtocolClient, str]:
    client = await connect()
    await client.update(**session)
    ready = await client.wait_for("session.ready")
    return client, ready["session_id"]
