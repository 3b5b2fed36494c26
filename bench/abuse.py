"""Abuse battery: attack a running server on loopback the way an attacker or a bad day would, and print
one table: attempts, what should happen, what did, and whether anything acknowledged was lost.

One server (the ``instant`` stack of bench/server_stacks.py: real Silero VAD, instant doubles for the
models) on 127.0.0.1 with short connection deadlines, and nothing but loopback traffic:

- bad credentials on every REST route and on the WebSocket (none, garbage, revoked key, API key in
  ``?token=``, spent token);
- a token storm: 250 simultaneous ``/v1/ws?token=`` connections with one one-time token;
- hostile WebSocket frames: deep nesting, oversized, binary, malformed JSON, unknown types;
- idle and slow connections: silent TCP sockets, request heads that never end, WebSockets that never
  configure;
- SSRF address tricks against HTTP tools and bring-your-own LLMs; malformed tool schemas; prompts over
  the token budget;
- concurrent partial updates of one agent (every acknowledged field must survive);
- SIGKILL during a write storm, then a restart: every acknowledged agent must still be there.

About a minute on a 2-core machine:

    PYTHONPATH=src .venv/bin/python bench/abuse.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server_stacks import stack_server
from bench.stats_table import machine_line, table
from tests.live_server import LiveServer

DEADLINE_SECONDS = 2.0
SERVER_ENV = {
    "VOXGATE_CONFIGURE_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    "VOXGATE_HTTP_IDLE_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    "VOXGATE_CREDENTIAL_RECHECK_SECONDS": "0.5",
}
AGENT = {"name": "abuse", "system_prompt": "Be brief.", "voice": {"voice_id": "ivy"}}
REST_ROUTES = [
    ("GET", "/v1/agents"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents/agent_x"),
    ("PUT", "/v1/agents/agent_x"),
    ("DELETE", "/v1/agents/agent_x"),
    ("GET", "/v1/token"),
    ("POST", "/v1/tokens"),
]
SSRF_URLS = [
    "http://127.0.0.1/x",
    "https://127.0.0.1/x",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://0x7f000001/x",
    "https://2130706433/x",
    "https://0177.0.0.1/x",
    "https://localhost/x",
    "https://127.1/x",
    "https://0.0.0.0/x",
    "https://192.168.1.1/x",
    "https://172.16.0.1/x",
    "https://[fd00::1]/x",
    "https://metadata.google.internal/x",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_x",
]


@dataclass
class Row:
    attack: str
    attempts: int
    expected: str
    observed: str
    held: bool


# --- helpers ------------------------------------------------------------------------------------------
async def ws_outcome(url: str, headers: dict[str, str] | None = None, send: list[Any] | None = None) -> str:
    """What the server answers a connection: the first session.error code (or ``ready``), then the close
    code, e.g. ``unauthorized/1008``."""
    try:
        async with connect(url, additional_headers=headers or {}, max_size=None, open_timeout=10) as ws:
            for frame in send or []:
                await ws.send(frame)
            first = "none"
            try:
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if event.get("type") == "session.error":
                        first = event["code"]
                        break
                    if event.get("type") == "session.ready":
                        return "ready"
                await asyncio.wait_for(ws.wait_closed(), 10)
            except ConnectionClosed:
                pass
            return f"{first}/{ws.close_code}"
    except ConnectionClosed as exc:
        return f"closed/{exc.rcvd.code if exc.rcvd else None}"
    except Exception as exc:
        return f"error:{type(exc).__name__}"


def counted(outcomes: list[str], expected: Callable[[str], bool]) -> tuple[int, str]:
    good = sum(1 for o in outcomes if expected(o))
    others = sorted({o for o in outcomes if not expected(o)})
    return good, f"{good}/{len(outcomes)}" + (f" (also {', '.join(others)})" if others else "")


# --- the battery --------------------------------------------------------------------------------------
async def bad_credentials(server: LiveServer, revoked_key: str) -> list[Row]:
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer vg_garbage"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {revoked_key}"},
        {"Authorization": "Bearer " + "x" * 10_000},
    ]
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        for method, path in REST_ROUTES:
            for headers in credentials:
                response = await http.request(method, path, headers=headers, json=AGENT)
                statuses.append(response.status_code)
    rest_good = sum(1 for s in statuses if s == 401)
    ws = server.ws_url
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=10) as http:
        spent = (await http.get("/v1/token")).json()["token"]
    await ws_outcome(f"{ws}?token={spent}")
    attempts = [
        (ws, {}),
        (ws, {"Authorization": "Bearer garbage"}),
        (ws, {"Authorization": f"Bearer {revoked_key}"}),
        (f"{ws}?token=vgt_forged", {}),
        (f"{ws}?token={server.api_key}", {}),
        (f"{ws}?token={spent}", {}),
        (f"{ws}?token=", {}),
    ]
    outcomes = await asyncio.gather(*(ws_outcome(url, headers) for url, headers in attempts))
    ws_good, ws_observed = counted(list(outcomes), lambda o: o == "unauthorized/1008")
    return [
        Row(
            "bad credentials, REST (7 routes)",
            len(statuses),
            "401",
            f"{rest_good}/{len(statuses)} 401",
            rest_good == len(statuses),
        ),
        Row(
            "bad credentials, WebSocket",
            len(outcomes),
            "unauthorized, 1008",
            ws_observed,
            ws_good == len(outcomes),
        ),
    ]


async def token_storm(server: LiveServer, count: int = 250) -> Row:
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=10) as http:
        token = (await http.get("/v1/token")).json()["token"]
    update = json.dumps({"type": "session.update", "session": {"system_prompt": "x"}})
    outcomes = await asyncio.gather(
        *(ws_outcome(f"{server.ws_url}?token={token}", send=[update]) for _ in range(count))
    )
    ready = outcomes.count("ready")
    refused = outcomes.count("unauthorized/1008")
    return Row(
        "token storm (one token)",
        count,
        "1 session, rest unauthorized",
        f"{ready} session, {refused} unauthorized",
        ready == 1 and refused == count - 1,
    )


async def hostile_frames(server: LiveServer) -> Row:
    frames: list[Any] = [
        "[" * 100_000,
        '{"type": "session.update", "session": ' + '{"a":' * 5_000 + "1" + "}" * 5_001,
        "x" * 1_100_000,
        b"\x00\x01binary",
        "{not json",
        "[]",
        '{"type": 7}',
        '{"type": "no.such.event"}',
        '{"type": "input.audio", "audio": "%%%"}',
        "\ud800".encode("utf-8", "surrogatepass"),
    ]
    outcomes = []
    for frame in frames:
        outcomes.append(await ws_outcome(server.ws_url, server.auth_headers(), send=[frame]))
    # one frame, one error: invalid_format (the session stays open) or a close for an oversized frame
    good, observed = counted(outcomes, lambda o: o.startswith("invalid_format") or o.endswith("/1009"))
    async with httpx.AsyncClient(timeout=5) as http:
        alive = (await http.get(f"{server.base_url}/healthz")).status_code == 200
    return Row(
        "hostile WebSocket frames",
        len(frames),
        "invalid_format or 1009; server up",
        observed + ("; server up" if alive else "; SERVER DOWN"),
        good == len(frames) and alive,
    )


async def idle_connections(server: LiveServer, each: int = 20) -> Row:
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []
    port = int(server.base_url.rsplit(":", 1)[1])
    for index in range(2 * each):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        if index % 2:  # slowloris: a request head that never ends
            await loop.sock_sendall(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    silent_ws = [
        connect(server.ws_url, additional_headers=server.auth_headers(), open_timeout=10) for _ in range(each)
    ]
    sessions = [await opening for opening in silent_ws]
    started = time.monotonic()

    async def closed_socket(sock: socket.socket) -> bool:
        """True once the server closes the socket (EOF or reset); whatever it sends first is read."""
        try:
            async with asyncio.timeout(4 * DEADLINE_SECONDS + 5):
                while await loop.sock_recv(sock, 65536):
                    pass
            return True
        except ConnectionResetError:
            return True
        except (TimeoutError, OSError):
            return False

    async def closed_ws(ws: Any) -> bool:
        try:
            await asyncio.wait_for(ws.wait_closed(), 4 * DEADLINE_SECONDS + 5)
            return True
        except TimeoutError:
            return False

    results = await asyncio.gather(*(closed_socket(s) for s in sockets), *(closed_ws(w) for w in sessions))
    elapsed = time.monotonic() - started
    for sock in sockets:
        sock.close()
    closed = sum(results)
    return Row(
        "idle TCP, slowloris heads, unconfigured WebSockets",
        len(results),
        f"all closed by the {DEADLINE_SECONDS:g} s deadlines",
        f"{closed} closed in {elapsed:.1f} s",
        closed == len(results),
    )


async def bad_configuration(server: LiveServer) -> list[Row]:
    bodies: list[dict[str, Any]] = []
    for url in SSRF_URLS:
        bodies.append({**AGENT, "tools": [{"name": "t", "http": {"url": url}}]})
        bodies.append({**AGENT, "llm": [{"base_url": url, "model": "m"}]})
    schemas = [
        {"type": "object", "properties": []},
        {"type": "object", "required": 7},
        {"type": "string"},
        {"$schema": "http://127.0.0.1:9/meta", "type": "object"},
        {"type": "object", "properties": {"a": {"type": "nope"}}},
    ]
    schema_bodies = [{**AGENT, "tools": [{"name": "t", "parameters": p}]} for p in schemas]
    prompt_bodies = [
        {**AGENT, "system_prompt": "Tell callers about the menu. " * 3_400},
        {**AGENT, "tools": [{"name": f"t{i}", "description": "d" * 4_000} for i in range(4)]},
    ]
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=30) as http:
        ssrf = [(await http.post("/v1/agents", json=b)).status_code for b in bodies]
        bad_schemas = [(await http.post("/v1/agents", json=b)).status_code for b in schema_bodies]
        prompts = [(await http.post("/v1/agents", json=b)).status_code for b in prompt_bodies]
    rows = []
    for name, statuses in (
        ("SSRF URLs (HTTP tools, BYO LLM)", ssrf),
        ("malformed tool schemas", bad_schemas),
        ("prompts over the token budget", prompts),
    ):
        good = statuses.count(422)
        rows.append(Row(name, len(statuses), "422", f"{good}/{len(statuses)} 422", good == len(statuses)))
    return rows


async def concurrent_updates(server: LiveServer, rounds: int = 5, parallel: int = 12) -> Row:
    lost = 0
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=30) as http:
        for round_number in range(rounds):
            agent_id = (await http.post("/v1/agents", json=AGENT)).json()["id"]
            updates = [{f"field_{i}": f"{round_number}-{i}"} for i in range(parallel)]
            answers = await asyncio.gather(*(http.put(f"/v1/agents/{agent_id}", json=u) for u in updates))
            stored = (await http.get(f"/v1/agents/{agent_id}")).json()
            for update, answer in zip(updates, answers, strict=True):
                key, value = next(iter(update.items()))
                lost += answer.status_code == 200 and stored.get(key) != value
    total = rounds * parallel
    return Row("concurrent partial PUTs", total, "0 acknowledged lost", f"{lost} lost", lost == 0)


async def kill_during_writes(server: LiveServer, writers: int = 8, seconds: float = 3.0) -> Row:
    acknowledged: list[str] = []

    async def writer(http: httpx.AsyncClient) -> None:
        while True:
            try:
                response = await http.post("/v1/agents", json={**AGENT, "name": "durable"})
            except httpx.HTTPError:
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])

    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=30) as http:
        tasks = [asyncio.create_task(writer(http)) for _ in range(writers)]
        await asyncio.sleep(seconds)  # the storm runs for a while: the kill lands mid-write
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        await asyncio.gather(*tasks)
    await asyncio.to_thread(server.restart)
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.auth_headers(), timeout=30) as http:
        missing = [
            agent_id
            for agent_id in acknowledged
            if (await http.get(f"/v1/agents/{agent_id}")).status_code != 200
        ]
    return Row(
        "SIGKILL during a write storm, restart",
        len(acknowledged),
        "0 acknowledged agents lost",
        f"{len(missing)} lost",
        not missing,
    )


async def run_battery(server: LiveServer) -> list[Row]:
    revoked_key = server.create_api_key()
    server.cli("keys", "revoke", revoked_key[:12])
    steps: list[Callable[[], Awaitable[Row | list[Row]]]] = [
        lambda: bad_credentials(server, revoked_key),
        lambda: token_storm(server),
        lambda: hostile_frames(server),
        lambda: idle_connections(server),
        lambda: bad_configuration(server),
        lambda: concurrent_updates(server),
        lambda: kill_during_writes(server),
    ]
    rows: list[Row] = []
    for step in steps:
        result = await step()
        rows.extend(result if isinstance(result, list) else [result])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voxgate-abuse-") as directory:
        server = stack_server("instant", Path(directory), **SERVER_ENV)
        server.start()
        try:
            rows = asyncio.run(run_battery(server))
        finally:
            server.stop()
    headers = ["attack", "attempts", "expected", "observed", "held"]
    body = [[r.attack, str(r.attempts), r.expected, r.observed, "yes" if r.held else "**NO**"] for r in rows]
    report = "\n".join(
        [table(headers, body), "", f"{machine_line()}; battery took {time.monotonic() - started:.0f} s."]
    )
    print(report)
    if args.output:
        args.output.write_text(report + "\n", encoding="utf-8")
    return 0 if all(r.held for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
