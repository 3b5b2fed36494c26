"""Reading a live server's ``/metrics`` in tests: one scrape, or scrapes until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from bench.metrics_scrape import Scrape, parse

from tests.live_server import LiveServer

POLL_SECONDS = 0.05


async def scrape(server: LiveServer) -> Scrape:
    """One ``GET /metrics`` on a new connection (with several workers, any worker may answer)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def poll_until(
    server: LiveServer,
    condition: Callable[[Scrape], bool],
    within: float = 10.0,
    describe: Callable[[Scrape], object] | None = None,
) -> Scrape:
    """Scrape until ``condition`` holds, for what has no event a client could await (a disconnect, a
    timer, a killed worker); fails after ``within`` seconds showing ``describe(last scrape)``."""
    deadline = time.monotonic() + within
    while True:
        current = await scrape(server)
        if condition(current):
            return current
        if time.monotonic() > deadline:
            shown = f": {describe(current)}" if describe is not None else ""
            raise AssertionError(f"the metrics never reached the expected state{shown}")
        await asyncio.sleep(POLL_SECONDS)
