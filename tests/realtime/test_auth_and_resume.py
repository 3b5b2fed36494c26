"""Authentication (PROTOCOL.md §2), session end, resume and the duration cap (§5.6, §10, §11)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import RESUME_GRACE_SECONDS, Connect, doubles_env, ready_client, utterance


async def _mint_token(server: LiveServer, **params: int) -> str:
    async with server.async_client() as rest:
        response = await rest.get("/v1/token", params={"expires_in_seconds": 60, **params})
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}],
    ids=["none", "bad", "empty"],
)
async def test_unauthorized_gets_error_then_1008(connect: Connect, headers: dict[str, str]) -> None:
    client = await connect(headers=headers)
    error = await client.expect_error("unauthorized")
    assert error["message"]
    assert await client.wait_closed() == 1008 and client.close_reason == "unauthorized"


async def test_raw_key_without_bearer_is_accepted(connect: Connect, rt_server: LiveServer) -> None:
    client = await connect(headers=rt_server.auth_headers(bearer=False))
    await client.update()
    await client.wait_for("session.ready")


async def test_token_is_one_time(connect: Connect, rt_server: LiveServer) -> None:
    token = await _mint_token(rt_server)
    first = await connect(headers={}, query=f"token={token}")
    await first.update()
    await first.wait_for("session.ready")
    second = await connect(headers={}, query=f"token={token}")
    await second.expect_error("unauthorized")
    assert await second.wait_closed() == 1008


async def test_session_end_then_close_1000_and_not_resumable(connect: Connect) -> None:
    client, session_id = await ready_client(connect)
    await client.send({"type": "session.end"})
    ended = await client.wait_for("session.ended")
    assert ended["audio_duration_seconds"] == 0.0 and ended["session_duration_seconds"] >= 0
    assert await client.wait_closed() == 1000
    again = await connect()
    await again.send({"type": "session.resume", "session_id": session_id})
    await again.expect_error("session_not_found")
    assert await again.wait_closed() == 1008


async def test_resume_restores_configuration_and_conversation(connect: Connect) -> None:
    client, session_id = await ready_client(connect, system_prompt="plain", greeting="Hello from before.")
    await client.wait_for("reply.done")
    await client.send_audio(utterance("hello there"))
    await client.wait_for("reply.done")
    await client.connection.close()  # a drop: no session.end

    resumed = await connect()
    await resumed.send({"type": "session.resume", "session_id": session_id})
    ready = await resumed.wait_for("session.ready")
    assert ready["session_id"] == session_id
    await resumed.send_audio(utterance("what did you say before"))
    answer = await resumed.wait_for("transcript.agent")
    assert answer["text"] == "Before I said: Hello from before. | You said hello there.."
    # The greeting is not replayed: the first reply after resume answers the question.
    assert resumed.non_audio_types()[:2] == ["session.ready", "input.speech.started"]


async def test_resume_after_grace_window_is_not_found(connect: Connect) -> None:
    client, session_id = await ready_client(connect)
    await client.connection.close()
    await asyncio.sleep(RESUME_GRACE_SECONDS + 0.5)  # the grace window is wall-clock time by definition
    late = await connect()
    await late.send({"type": "session.resume", "session_id": session_id})
    await late.expect_error("session_not_found")
    assert await late.wait_closed() == 1008


async def test_resume_unknown_id_is_not_found(connect: Connect) -> None:
    client = await connect()
    await client.send({"type": "session.resume", "session_id": "sess_nope"})
    await client.expect_error("session_not_found")


async def test_resume_from_another_project_is_forbidden(connect: Connect, rt_server: LiveServer) -> None:
    client, session_id = await ready_client(connect)
    await client.connection.close()
    other_key = rt_server.create_api_key(project="other-project")
    other = await connect(headers=rt_server.auth_headers(other_key))
    await other.send({"type": "session.resume", "session_id": session_id})
    await other.expect_error("session_forbidden")
    assert await other.wait_closed() == 1008
    # The owner can still resume it.
    owner = await connect()
    await owner.send({"type": "session.resume", "session_id": session_id})
    await owner.wait_for("session.ready", session_id=session_id)


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("short"), env=doubles_env(VOXGATE_MAX_SESSION_DURATION_SECONDS="2")
    )
    with server:
        yield server


async def test_duration_cap_expires_session(connect: Connect, short_server: LiveServer) -> None:
    client = await connect(short_server)
    await client.update()
    await client.wait_for("session.ready")
    error = await client.wait_for("session.error", within=10)
    assert error["code"] == "session_expired"
    assert (await client.next_event())["type"] == "session.ended"
    assert await client.wait_closed() == 1008


async def test_token_duration_cap_is_enforced(connect: Connect, rt_server: LiveServer) -> None:
    token = await _mint_token(rt_server, max_session_duration_seconds=60)
    client = await connect(headers={}, query=f"token={token}")
    await client.update()
    ready = await client.wait_for("session.ready")
    # The cap is the token's 60 s, not the server's 3 h (the expiry itself is tested with short_server).
    assert abs(ready["expires_at"] - (time.time() + 60)) <= 3


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = doubles_env(
        VOXGATE_VAD="tests.doubles:slow_energy_vad",
        VOXGATE_AGENT_READY_TIMEOUT_SECONDS="1",
        VOXGATE_TEST_SLOW_LOAD_SECONDS="4",
    )
    server = LiveServer(tmp_path_factory.mktemp("slow"), env=env)
    with server:
        yield server


async def test_agent_timeout_when_models_are_not_ready(connect: Connect, slow_server: LiveServer) -> None:
    client = await connect(slow_server)
    await client.update()
    error = await client.expect_error("internal_error", within=10)
    assert "not ready" in error["message"]
    assert await client.wait_closed() == 1011


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("broken"), env=doubles_env(VOXGATE_TTS="tests.doubles:broken_tts")
    )
    with server:
        yield server


async def test_agent_init_failed_when_models_fail(connect: Connect, broken_server: LiveServer) -> None:
    client = await connect(broken_server)
    await client.update()
    error = await client.expect_error("internal_error")
    assert "broken" in error["message"]
    assert await client.wait_closed() == 1011
