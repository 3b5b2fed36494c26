"""Graceful drain on SIGTERM and ``voxgate serve --workers N`` (real processes, real PostgreSQL/Redis)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer, free_port
from tests.realtime.conftest import utterance
from tests.realtime.protocol_client import ProtocolClient
from tests.scale.conftest import Cluster, open_client

SERVICE_RESTART = 1012
CLEAN_EXIT = (0, -signal.SIGTERM)
"""uvicorn re-raises the signal it shut down for, so a clean stop may end "killed by SIGTERM"."""


async def _story_in_flight(server: LiveServer, clients: list[ProtocolClient]) -> tuple[ProtocolClient, str]:
    """A session whose agent is in the middle of a long (about 6 s) spoken story."""
    client = await open_client(server, clients)
    await client.update(system_prompt="plain", greeting="Hello from before.")
    session_id = (await client.wait_for("session.ready"))["session_id"]
    await client.wait_for("reply.done")
    await client.send_audio(utterance("tell me a long story"))
    await client.wait_for("reply.audio")
    return client, session_id


async def _history_seen_on(server: LiveServer, clients: list[ProtocolClient], session_id: str) -> str:
    client = await open_client(server, clients)
    await client.send({"type": "session.resume", "session_id": session_id})
    await client.wait_for("session.ready", session_id=session_id)
    await client.send_audio(utterance("what did you say before"))
    return str((await client.wait_for("transcript.agent", within=15))["text"])


async def test_sigterm_lets_the_reply_finish_then_hands_the_session_over(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    leaving = cluster.start("leaving", VOXGATE_DRAIN_SECONDS="20")
    client, session_id = await _story_in_flight(leaving, clients)
    assert leaving.process is not None
    signalled = time.monotonic()
    leaving.process.send_signal(signal.SIGTERM)
    # Half a second later the drain has certainly begun: no new sessions, not ready for traffic.
    while time.monotonic() - signalled < 0.5:
        await client.wait_for("reply.audio")
    async with httpx.AsyncClient(base_url=leaving.base_url) as http:
        assert (await http.get("/healthz")).status_code == 503
    newcomer = await open_client(leaving, clients)
    await newcomer.expect_error("at_capacity")
    # The story in flight is told to the end, then the connection closes with 1012 (resume elsewhere).
    done = await client.wait_for("reply.done", within=15)
    assert done["status"] == "completed"
    assert await client.wait_closed() == SERVICE_RESTART
    assert "session.ended" not in client.types()
    exit_code = await asyncio.to_thread(leaving.process.wait, 20)
    assert exit_code in CLEAN_EXIT and time.monotonic() - signalled < 20
    history = await _history_seen_on(cluster["b"], clients, session_id)
    assert history.startswith("Before I said: Hello from before. | Once upon a time")
    assert "set sail at dawn." in history


async def test_drain_deadline_cuts_a_long_reply_and_checkpoints_what_was_heard(
    cluster: Cluster, clients: list[ProtocolClient]
) -> None:
    leaving = cluster.start("hurried", VOXGATE_DRAIN_SECONDS="1.5")
    client, session_id = await _story_in_flight(leaving, clients)
    assert leaving.process is not None
    signalled = time.monotonic()
    leaving.process.send_signal(signal.SIGTERM)
    assert await client.wait_closed() == SERVICE_RESTART
    assert time.monotonic() - signalled < 5
    assert client.types().count("reply.done") == 1  # the greeting's; the story never completed
    assert await asyncio.to_thread(leaving.process.wait, 20) in CLEAN_EXIT
    history = await _history_seen_on(cluster["a"], clients, session_id)
    assert history.startswith("Before I said: Hello from before. | Once upon a time")
    assert "set sail at dawn" not in history  # cut at what had been played


def test_workers_need_shared_state(tmp_path: Path) -> None:
    server = LiveServer(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "voxgate", "serve", "--workers", "2", "--port", str(free_port())],
        cwd=tmp_path,
        env=server.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "VOXGATE_REDIS_URL" in result.stderr


@pytest.fixture
def workers_server(cluster: Cluster, tmp_path: Path) -> LiveServer:
    """Connection details of a ``serve --workers 2`` supervisor started by the test (not by LiveServer)."""
    return LiveServer(tmp_path, api_key=cluster.api_key, env={**cluster.env, "VOXGATE_INSTANCE_ID": "w"})


async def test_serve_with_two_workers_shares_sessions(
    workers_server: LiveServer, clients: list[ProtocolClient]
) -> None:
    server = workers_server
    server.port = free_port()
    log = (server.data_dir / "workers.log").open("wb")
    command = [sys.executable, "-m", "voxgate", "serve", "--workers", "2", "--port", str(server.port)]
    process = subprocess.Popen(  # noqa: ASYNC220 - started once; its output goes to a file
        command, cwd=server.data_dir, env=server.process_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (server.data_dir / "workers.log").read_text()
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the workers did not come up"
                await asyncio.sleep(0.1)  # polling readiness: there is no event to await
        children = await asyncio.to_thread(
            subprocess.run, ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        )
        assert len(children.stdout.split()) >= 2, children.stdout
        # Sessions started on one worker resume on whichever worker takes the next connection.
        session_ids = []
        for _ in range(4):
            client = await open_client(server, clients)
            await client.update(system_prompt="plain", greeting="Hello from before.")
            session_ids.append((await client.wait_for("session.ready"))["session_id"])
            await client.wait_for("reply.done")
            await client.connection.close()
        for session_id in session_ids:
            history = await _history_seen_on(server, clients, session_id)
            assert history == "Before I said: Hello from before.."
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(process.wait, 30)
        log.close()
    assert exit_code in CLEAN_EXIT
