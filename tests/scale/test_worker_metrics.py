"""``voxgate serve --workers 2``: ``/metrics`` on either worker reports the sessions of both
(prometheus-client multiprocess mode), ``/metrics/turns`` lists the turns of both, and a killed worker's
live sessions stop counting as active. Needs Redis (``--workers`` refuses to run without it); the
database is SQLite, shared by the two workers of one machine."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from bench.metrics_scrape import Scrape, parse
from prometheus_client.multiprocess import MultiProcessCollector
from websockets.protocol import State

from tests.live_server import LiveServer, free_port
from tests.metrics_polling import poll_until
from tests.realtime.conftest import INSTANT_AUDIO_ENV, doubles_env
from tests.realtime.protocol_client import ProtocolClient
from tests.scale.conftest import REDIS_URL, open_client

CLEAN_EXIT = (0, -signal.SIGTERM)
BATCH = 4
MAX_BATCHES = 8
SCRAPES = 6
"""Scrapes per check: the shared socket hands each to either worker, and every one must agree."""
POLL_SECONDS = 0.1


class Workers:
    """A ``serve --workers 2`` supervisor started by the test, with its metrics directory."""

    def __init__(self, server: LiveServer, process: subprocess.Popen[bytes], tmp: Path) -> None:
        self.server = server
        self.process = process
        self.tmp = tmp

    @property
    def metrics_dir(self) -> Path:
        (directory,) = self.tmp.glob("voxgate-metrics-*")
        return directory

    def log(self) -> str:
        return (self.server.data_dir / "workers.log").read_text(errors="replace")

    def started_by_worker(self) -> dict[int, float]:
        """``voxgate_sessions_started_total`` per worker pid that started any, read from each worker's own
        counter file."""
        counts: dict[int, float] = {}
        for path in self.metrics_dir.glob("counter_*.db"):
            pid = int(path.stem.split("_")[1])
            for metric in MultiProcessCollector.merge([str(path)]):
                for sample in metric.samples:
                    if sample.name == "voxgate_sessions_started_total" and sample.value > 0:
                        counts[pid] = counts.get(pid, 0.0) + sample.value
        return counts


@pytest.fixture
async def workers(redis_prefix: str, tmp_path: Path) -> AsyncIterator[Workers]:
    tmp = tmp_path / "tmp"  # TMPDIR of the supervisor: where it makes the metrics directory
    tmp.mkdir()
    env = doubles_env(
        VOXGATE_REDIS_URL=REDIS_URL,
        VOXGATE_REDIS_KEY_PREFIX=redis_prefix,
        VOXGATE_SECRET_KEY="worker-metrics-" + secrets.token_hex(16),
        VOXGATE_INSTANCE_ID="wm",
        TMPDIR=str(tmp),
        **INSTANT_AUDIO_ENV,
    )
    server = LiveServer(tmp_path / "data", env=env)
    server.data_dir.mkdir()
    server.port = free_port()
    log = (server.data_dir / "workers.log").open("wb")
    command = [sys.executable, "-m", "voxgate", "serve", "--workers", "2", "--port", str(server.port)]
    process = subprocess.Popen(  # noqa: ASYNC220 - started once; its output goes to a file
        command, cwd=server.data_dir, env=server.process_env(), stdout=log, stderr=subprocess.STDOUT
    )
    running = Workers(server, process, tmp)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, running.log()
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the workers did not come up"
                await asyncio.sleep(POLL_SECONDS)  # polling readiness: there is no event to await
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(process.wait, 30)
        log.close()
    assert exit_code in CLEAN_EXIT, running.log()
    assert not list(tmp.glob("voxgate-metrics-*")), "the supervisor leaves its metrics directory behind"


async def scrapes(server: LiveServer, count: int = SCRAPES) -> list[Scrape]:
    """``count`` scrapes on separate connections (so either worker may answer each)."""
    results = []
    for _ in range(count):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            response = await http.get("/metrics")
        assert response.status_code == 200
        results.append(parse(response.text))
    return results


def sessions(scraped: Scrape) -> tuple[float, float, float]:
    """(active, started, ended) as one scrape reports them."""
    return (
        scraped.value("voxgate_sessions_active") or 0.0,
        scraped.total("voxgate_sessions_started_total"),
        scraped.value("voxgate_sessions_ended_total", how="ended") or 0.0,
    )


async def open_session(server: LiveServer, opened: list[ProtocolClient]) -> tuple[ProtocolClient, str]:
    """A ready session whose greeting has been spoken (so it has one turn)."""
    client = await open_client(server, opened)
    await client.update(system_prompt="plain", greeting="Hello from a worker.")
    session_id = str((await client.wait_for("session.ready"))["session_id"])
    await client.wait_for("reply.done")
    return client, session_id


async def test_any_worker_reports_the_sessions_and_turns_of_all_workers(
    workers: Workers, clients: list[ProtocolClient]
) -> None:
    server = workers.server
    assert all(sessions(scraped) == (0, 0, 0) for scraped in await scrapes(server))

    # Sessions opened a few at a time until both workers have some (the kernel picks the worker).
    opened: list[tuple[ProtocolClient, str]] = []
    for _ in range(MAX_BATCHES):
        opened += await asyncio.gather(*(open_session(server, clients) for _ in range(BATCH)))
        if len(workers.started_by_worker()) == 2:
            break
    by_worker = workers.started_by_worker()
    assert len(by_worker) == 2 and all(count >= 1 for count in by_worker.values()), by_worker
    total = len(opened)
    assert sum(by_worker.values()) == total

    for scraped in await scrapes(server):
        assert sessions(scraped) == (total, total, 0)

    session_ids = [session_id for _, session_id in opened]
    for _ in range(SCRAPES):
        async with server.async_client() as http:
            response = await http.get("/metrics/turns", params={"session_id": session_ids})
        assert response.status_code == 200
        listed = [turn["session_id"] for turn in response.json()["turns"]]
        assert sorted(listed) == sorted(session_ids)  # one greeting each, whichever worker ran it

    # One worker is killed: its sessions stop counting as active; what it counted stays.
    os.kill(min(by_worker), signal.SIGKILL)

    def still_open() -> list[ProtocolClient]:
        return [client for client, _ in opened if client.connection.state is State.OPEN]

    await poll_until(
        server, lambda s: len(still_open()) < total and sessions(s)[0] == len(still_open()), 20, sessions
    )
    survivors = still_open()
    assert len(survivors) == total - by_worker[min(by_worker)]
    for scraped in await scrapes(server):
        assert sessions(scraped) == (len(survivors), total, 0)

    # The sessions on the other worker end cleanly.
    for client in survivors:
        await client.send({"type": "session.end"})
        await client.wait_for("session.ended")
    for scraped in await scrapes(server):
        assert sessions(scraped) == (0, total, len(survivors))
