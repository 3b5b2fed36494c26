"""A session's objects are released once it ends or its connection drops (issue #7: the soak's idle
memory must not grow). A real server process with the speech doubles writes memory reports on SIGUSR2
(``VOXGATE_DEBUG_MEMORY_DIR``, voxgate.memory_care); the test counts the live objects of the types one
session owns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import INSTANT_AUDIO_ENV, doubles_env, utterance
from tests.realtime.protocol_client import ProtocolClient

GRACE_SECONDS = 1.0
REPORT_TIMEOUT_SECONDS = 30.0
RELEASE_TIMEOUT_SECONDS = 15.0

PER_SESSION_TYPES = (
    "voxgate.conversation.session.Session",
    "voxgate.conversation.turns.TurnTaker",
    "voxgate.conversation.reply.Reply",
    "voxgate.conversation.ledger.Ledger",
    "voxgate.store.checkpoints.SessionCheckpoint",
    "voxgate.api.realtime.WebSocketSink",
    "voxgate.api.locked_socket.LockedSocket",
    "voxgate.telemetry.session_meter.SessionMeter",
    "tests.doubles.EnergyVoiceActivityStream",
)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("memory-reports")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dumps: Path) -> Iterator[LiveServer]:
    env = doubles_env(
        **INSTANT_AUDIO_ENV,
        VOXGATE_RESUME_GRACE_SECONDS=str(GRACE_SECONDS),
        VOXGATE_DEBUG_MEMORY_DIR=str(dumps),
    )
    with LiveServer(tmp_path_factory.mktemp("release"), env=env) as live:
        yield live


def reports_in(dumps: Path) -> set[Path]:
    return set(dumps.glob("*.json"))


def read_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


async def memory_report(server: LiveServer, dumps: Path) -> dict[str, Any]:
    """Ask the server for a memory report (SIGUSR2) and read it."""
    assert server.process is not None
    known = reports_in(dumps)
    os.kill(server.process.pid, signal.SIGUSR2)
    deadline = time.monotonic() + REPORT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        new = sorted(reports_in(dumps) - known)
        if new:
            return read_report(new[0])
        await asyncio.sleep(0.05)  # polling: the report is a file another process writes
    raise AssertionError(f"no memory report within {REPORT_TIMEOUT_SECONDS} s:\n{server.log_text()[-2000:]}")


def live_session_objects(report: dict[str, Any]) -> dict[str, int]:
    objects = report["python_objects"]
    return {name: objects[name] for name in PER_SESSION_TYPES if objects.get(name)}


async def talk_once(server: LiveServer) -> tuple[ProtocolClient, str]:
    """Open a session and finish one user turn (utterance -> transcript -> whole reply)."""
    client = await ProtocolClient.open(server.ws_url, headers=server.auth_headers())
    await client.update(system_prompt="Be brief.")
    ready = await client.wait_for("session.ready")
    await client.send_audio(utterance("hello there"))
    await client.wait_for("transcript.user")
    await client.wait_for("reply.done")
    return client, ready["session_id"]


async def test_session_objects_are_released_after_end_and_after_drop(server: LiveServer, dumps: Path) -> None:
    client, _ = await talk_once(server)
    during = live_session_objects(await memory_report(server, dumps))
    for name in ("voxgate.conversation.session.Session", "voxgate.conversation.turns.TurnTaker"):
        assert during.get(name) == 1, f"the report does not see the live session: {during}"
    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")
    await client.wait_closed()

    for index in range(6):
        client, _ = await talk_once(server)
        if index % 2:
            await client.connection.close()  # a drop: resumable for the grace period
        else:
            await client.send({"type": "session.end"})
            await client.wait_for("session.ended")
            await client.wait_closed()
    await asyncio.sleep(GRACE_SECONDS + 0.5)  # the dropped sessions' grace windows are time, not an event
    client, _ = await talk_once(server)  # the checkpoint store forgets expired sessions on its next use
    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")
    await client.wait_closed()

    # The server finishes a session just after the client sees the close: allow it a moment.
    deadline = time.monotonic() + RELEASE_TIMEOUT_SECONDS
    while left := live_session_objects(await memory_report(server, dumps)):
        assert time.monotonic() < deadline, f"objects of ended or dropped sessions are still alive: {left}"


def test_native_heap_metric_is_exported(server: LiveServer) -> None:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    in_use = [
        line for line in text.splitlines() if line.startswith('voxgate_native_heap_bytes{state="in_use"}')
    ]
    assert in_use and float(in_use[0].split()[-1]) > 1_000_000
