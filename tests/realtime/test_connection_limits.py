"""Connections that do not play by the rules, on real server processes (issue #19 items 4, 5, 6): frames
nested too deeply, connections that never configure, HTTP clients that never finish a request head, and
WebSocket clients that never read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LiveServer
from tests.metrics_polling import poll_until, scrape
from tests.realtime.conftest import Connect, doubles_env
from tests.realtime.protocol_client import ProtocolClient
from tests.realtime.raw_websocket import RawWebSocket

CONFIGURE_TIMEOUT_SECONDS = 1.0
HTTP_IDLE_TIMEOUT_SECONDS = 1.0
SLOW_CONSUMER_SECONDS = 2.0
LARGE_FRAME_BYTES = 1_000_000


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Short deadlines, and room for one session only (so a slot that is never given back shows)."""
    env = doubles_env(
        VOXGATE_CONFIGURE_TIMEOUT_SECONDS=str(CONFIGURE_TIMEOUT_SECONDS),
        VOXGATE_HTTP_IDLE_TIMEOUT_SECONDS=str(HTTP_IDLE_TIMEOUT_SECONDS),
        VOXGATE_SLOW_CONSUMER_SECONDS=str(SLOW_CONSUMER_SECONDS),
        VOXGATE_MAX_SESSIONS="1",
    )
    with LiveServer(tmp_path_factory.mktemp("strict"), env=env) as server:
        yield server


def nested(depth: int) -> str:
    return '{"type": "session.update", "session": {"x": ' + "[" * depth + "]" * depth + "}}"


# --- item 6: nesting ---------------------------------------------------------------------------------
async def test_a_deeply_nested_frame_is_invalid_format_and_the_session_goes_on(connect: Connect) -> None:
    client = await connect()
    await client.send(nested(1000))  # ~2 KB: used to end the session (close 1000, no error)
    error = await client.expect_error("invalid_format")
    assert "nested deeper than 32 levels" in error["message"]
    await client.send("[" * 100_000)
    await client.expect_error("invalid_format")
    await client.update(system_prompt="Be brief.")
    await client.wait_for("session.ready")
    await client.send(nested(40))
    await client.expect_error("invalid_format")
    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")


# --- item 5: deadlines -------------------------------------------------------------------------------
async def test_a_connection_that_never_configures_is_closed_and_frees_its_slot(
    strict_server: LiveServer,
) -> None:
    idle = await ProtocolClient.open(strict_server.ws_url, headers=strict_server.auth_headers())
    try:
        error = await idle.expect_error("session_expired", within=CONFIGURE_TIMEOUT_SECONDS + 5)
        assert "session.update" in error["message"]
        assert await idle.wait_closed() == 1008
    finally:
        await idle.connection.close()
    # An invalid first update does not count as configured either.
    invalid = await ProtocolClient.open(strict_server.ws_url, headers=strict_server.auth_headers())
    try:
        await invalid.update(output={"voice": "nobody"})
        await invalid.expect_error("invalid_value")
        await invalid.expect_error("session_expired", within=CONFIGURE_TIMEOUT_SECONDS + 5)
        assert await invalid.wait_closed() == 1008
    finally:
        await invalid.connection.close()
    # The only slot is free again: a session that configures in time is admitted and stays.
    client = await ProtocolClient.open(strict_server.ws_url, headers=strict_server.auth_headers())
    try:
        await client.update(system_prompt="Be brief.")
        await client.wait_for("session.ready")
        await client.send({"type": "session.end"})
        await client.wait_for("session.ended")
    finally:
        await client.connection.close()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection (EOF) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
    ],
    ids=["silent", "slow-http-head", "slow-upgrade-head"],
)
async def test_connections_without_a_complete_request_head_are_cut(
    strict_server: LiveServer, sent: bytes
) -> None:
    reader, writer = await asyncio.open_connection(strict_server.host, strict_server.port)
    try:
        writer.write(sent)
        await writer.drain()
        assert await _closed_by_server(reader, HTTP_IDLE_TIMEOUT_SECONDS + 5)
    finally:
        writer.close()


async def test_a_keep_alive_connection_trickling_its_next_request_is_cut(strict_server: LiveServer) -> None:
    reader, writer = await asyncio.open_connection(strict_server.host, strict_server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        await writer.drain()
        assert await _closed_by_server(reader, HTTP_IDLE_TIMEOUT_SECONDS + 5)
    finally:
        writer.close()


# --- item 4: clients that never read ----------------------------------------------------------------
def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_client_that_never_reads_is_closed_as_slow_consumer_with_bounded_memory(
    strict_server: LiveServer,
) -> None:
    assert strict_server.process is not None
    before = (await scrape(strict_server)).value("voxgate_session_errors_total", code="slow_consumer") or 0.0
    client = await RawWebSocket.open(strict_server.ws_url, strict_server.auth_headers())
    await client.send({"type": "session.update", "session": {"system_prompt": "Be brief."}})
    assert (await client.next_event())["type"] == "session.ready"
    baseline = resident_mib(strict_server.process.pid)

    async def flood() -> None:
        # Small bad frames make the server answer each with session.error until its sends back up; then
        # large ones, which it must not buffer beyond its input queue while it cannot send.
        for _ in range(60_000):
            await client.send("x")
        for _ in range(400):
            await client.send(json.dumps({"type": "input.audio", "audio": "A" * LARGE_FRAME_BYTES}))

    flooding = asyncio.create_task(flood())
    try:
        await poll_until(
            strict_server,
            lambda s: (s.value("voxgate_session_errors_total", code="slow_consumer") or 0.0) > before,
            within=60,
        )
        grown = resident_mib(strict_server.process.pid) - baseline
        events, close = await client.read_until_closed()
    finally:
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
        client.close()
    assert close is not None and (close.code, close.reason) == (1008, "slow_consumer")
    assert events and all(event["type"] == "session.error" for event in events)
    assert grown < 100, f"the server grew by {grown:.0f} MiB while its client did not read"
    # The slot came back: another session is admitted.
    second = await ProtocolClient.open(strict_server.ws_url, headers=strict_server.auth_headers())
    try:
        await second.update(system_prompt="Be brief.")
        await second.wait_for("session.ready")
    finally:
        await second.connection.close()
