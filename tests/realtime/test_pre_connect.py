"""Pre-connect requests over a real server: a loopback CRM fills the greeting's placeholders; a slow or
failing one falls back to the defaults without holding the session up."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import Connect, ready_client


class _Crm(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        _Crm.seen.append({k: v[0] for k, v in parse_qs(parts.query).items()})
        if parts.path == "/slow":
            time.sleep(2.0)
        if parts.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        data = json.dumps({"customer": {"name": "Ada", "plan": "gold"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def crm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Crm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def _agent(rt_server: LiveServer, url: str) -> str:
    async with rt_server.async_client() as rest:
        response = await rest.post(
            "/v1/agents",
            json={
                "name": "Concierge",
                "system_prompt": "The caller is {{name}} on the {{plan}} plan.",
                "greeting": "Hello {{name}}, welcome back to the {{plan}} plan!",
                "voice": {"voice_id": "ivy"},
                "pre_connect_requests": [
                    {
                        "http": {"url": url, "http_method": "GET"},
                        "sends": ["agent_id", "session_id"],
                        "returns": [
                            {"name": "name", "path": "customer.name", "default": "there"},
                            {"name": "plan", "path": "$.customer.plan", "default": "basic"},
                        ],
                        "timeout_ms": 500,
                    }
                ],
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


async def test_the_answer_fills_the_greeting(connect: Connect, rt_server: LiveServer, crm_url: str) -> None:
    agent_id = await _agent(rt_server, f"{crm_url}/lookup")
    client, session_id = await ready_client(connect, agent_id=agent_id)
    greeting = await client.wait_for("transcript.agent")
    assert greeting["text"] == "Hello Ada, welcome back to the gold plan!"
    assert {"agent_id": agent_id, "session_id": session_id} in _Crm.seen


@pytest.mark.parametrize("path", ["/slow", "/broken"])
async def test_a_slow_or_failing_lookup_falls_back_to_the_defaults(
    connect: Connect, rt_server: LiveServer, crm_url: str, path: str
) -> None:
    agent_id = await _agent(rt_server, f"{crm_url}{path}")
    started = time.monotonic()
    client, _ = await ready_client(connect, agent_id=agent_id)
    ready_after = time.monotonic() - started
    greeting = await client.wait_for("transcript.agent")
    assert greeting["text"] == "Hello there, welcome back to the basic plan!"
    assert ready_after < 1.9  # the 2 s lookup did not hold the session (its timeout is 500 ms)
