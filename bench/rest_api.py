"""REST latency of a real voxgate server (loopback, one client, sequential requests).

Starts ``voxgate serve`` on a temp SQLite data dir (or ``--database-url``), then times, per operation,
``--requests`` sequential calls over one keep-alive connection and prints a Markdown table of
percentiles. Also times token redemption in the store (the single conditional UPDATE ... RETURNING).
A short run (default 200 per operation) takes well under a minute; do not loop it on a shared machine.

    .venv/bin/python bench/rest_api.py [--requests 200] [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live_server import LiveServer

from voxgate.config import Settings
from voxgate.store import Store

AGENT = {
    "name": "Bench agent",
    "system_prompt": "You are a benchmark.",
    "voice": {"voice_id": "ivy"},
    "tools": [
        {
            "name": "lookup",
            "http": {"url": "https://api.example.com/x", "headers": [{"name": "X-Key", "value": "secret"}]},
        }
    ],
}


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"{pick(0.5):.2f} | {pick(0.95):.2f} | {pick(0.99):.2f} | {statistics.fmean(ordered):.2f}"


def timed(count: int, call: Callable[[int], httpx.Response], expected: int) -> list[float]:
    samples: list[float] = []
    for index in range(count):
        start = time.perf_counter()
        response = call(index)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != expected:
            raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
    return samples


async def redeem_times(data_dir: Path, database_url: str | None, count: int) -> list[float]:
    store = await Store.open(Settings(_env_file=None, data_dir=data_dir, database_url=database_url))  # type: ignore[call-arg]
    try:
        project = await store.keys.ensure_project("bench")
        tokens = [(await store.tokens.mint(project, 600, 600)).token for _ in range(count)]
        samples: list[float] = []
        for token in tokens:
            start = time.perf_counter()
            grant = await store.tokens.redeem(token)
            samples.append((time.perf_counter() - start) * 1000)
            assert grant is not None
        return samples
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as directory:
        env = {"VOXGATE_DATABASE_URL": args.database_url} if args.database_url else {}
        env["VOXGATE_LOG_LEVEL"] = "warning"
        server = LiveServer(Path(directory), env=env).start()
        try:
            with server.client() as client:
                ids: list[str] = []

                def create(_: int) -> httpx.Response:
                    response = client.post("/v1/agents", json=AGENT)
                    ids.append(response.json()["id"])
                    return response

                rows = [
                    ("GET /healthz", timed(n, lambda _: client.get("/healthz"), 200)),
                    ("POST /v1/agents", timed(n, create, 201)),
                    ("GET /v1/agents/{id}", timed(n, lambda i: client.get(f"/v1/agents/{ids[i]}"), 200)),
                    (
                        "PUT /v1/agents/{id}",
                        timed(n, lambda i: client.put(f"/v1/agents/{ids[i]}", json={"name": f"n{i}"}), 200),
                    ),
                    (
                        f"GET /v1/agents (first page of 50, {n} agents)",
                        timed(n, lambda _: client.get("/v1/agents"), 200),
                    ),
                    ("GET /v1/token", timed(n, lambda _: client.get("/v1/token"), 200)),
                    (
                        "DELETE /v1/agents/{id}",
                        timed(n, lambda i: client.delete(f"/v1/agents/{ids[i]}"), 204),
                    ),
                ]
        finally:
            server.stop()
        rows.append(
            ("store: tokens.redeem", asyncio.run(redeem_times(Path(directory), args.database_url, n)))
        )
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"REST latency, {backend}, {n} sequential requests per row, milliseconds\n")
    print("| operation | p50 | p95 | p99 | mean |\n|---|---|---|---|---|")
    for name, samples in rows:
        print(f"| {name} | {percentiles(samples)} |")


if __name__ == "__main__":
    main()
