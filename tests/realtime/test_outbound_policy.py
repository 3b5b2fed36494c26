"""The outbound-URL policy (issue #19 items 2 and 9): which destinations and headers a tenant's requests
may use, the HTTP client that enforces it at connect time, and a bring-your-own LLM over a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import Connect, ready_client
from voxgate.conversation.http_tools import sendable_headers
from voxgate.outbound.addresses import address_is_public, host_literal
from voxgate.outbound.forbidden_headers import header_is_forbidden
from voxgate.outbound.policy import DestinationRefused, OutboundPolicy, ResponseTooLarge, outbound_client

REMOTE_SECRET = "remote-body-7f3a-do-not-echo"


# --- pure rules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True), ("8.8.8.8", True),
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
        ("255.255.255.255", False), ("::1", False), ("::", False), ("fe80::1", False),
        ("fd00:ec2::254", False), ("ff02::1", False), ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False), ("64:ff9b::a00:1", False), ("64:ff9b::808:808", True),
        ("2002:a00:1::", False), ("2002:808:808::", True), ("fe80::1%eth0", False), ("not an address", False),
    ],
)  # fmt: skip
def test_public_addresses(address: str, public: bool) -> None:
    assert address_is_public(address) is public


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("[::1]", "::1"), ("127.0.0.1.", "127.0.0.1"),
        ("example.com", None), ("1e100.net", None), ("0x7g.1", None),
    ],
)  # fmt: skip
def test_address_literals_in_every_spelling(host: str, literal: str | None) -> None:
    found = host_literal(host)
    assert (str(found) if found is not None else None) == literal


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://api.example.com/v1", False), ("https://93.184.216.34/", False),
        ("http://api.example.com/v1", True), ("ftp://api.example.com/", True), ("https:///nohost", True),
        ("https://localhost/", True), ("https://LOCALHOST./", True), ("https://db.internal/", True),
        ("https://printer.local/", True), ("https://x.localhost/", True), ("https://2130706433/", True),
        ("https://[::ffff:169.254.169.254]/", True), ("https://api.example.com:99999/", True),
        ("http://10.0.0.5:8080/v1", False), ("http://Tools.Corp.:80/", False),
    ],
)  # fmt: skip
def test_url_rules_without_dns(url: str, refused: bool) -> None:
    policy = OutboundPolicy.allowing(["10.0.0.5", "tools.corp"])
    assert (policy.url_refusal(url) is not None) is refused


@pytest.mark.parametrize(
    ("name", "forbidden"),
    [("Host", True), ("content-length", True), ("Transfer-Encoding", True), ("Connection", True),
     ("keep-alive", True), ("Upgrade", True), ("TE", True), ("Trailer", True), ("Proxy-Authorization", True),
     ("proxy-connection", True), ("Expect", True), ("Authorization", False), ("X-Api-Key", False),
     ("Content-Type", False), ("Hostname", False)],
)  # fmt: skip
def test_transport_headers_are_forbidden(name: str, forbidden: bool) -> None:
    assert header_is_forbidden(name) is forbidden


def test_stored_transport_headers_are_not_sent() -> None:
    assert sendable_headers({"Content-Length": "5", "Host": "evil", "X-Key": "v"}) == {"X-Key": "v"}


# --- resolution and the pinned client --------------------------------------------------------------------
def fake_dns(answers: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return answers[host]

    return resolve


DNS = fake_dns(
    {
        "inside.example": ["10.0.0.7"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "rebind.example": ["127.0.0.1"],
    }
)


async def test_names_resolving_inside_are_refused() -> None:
    policy = OutboundPolicy.allowing([], resolver=DNS)
    assert await policy.addresses_for("public.example", 443) == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]
    for host in ("inside.example", "mixed.example", "unknown.example", "localhost"):
        with pytest.raises(DestinationRefused):
            await policy.addresses_for(host, 443)


class _Counting(BaseHTTPRequestHandler):
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        body = b"y" * 100_000 if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"error": {"message": f"internal detail {REMOTE_SECRET}"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def loopback_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


async def test_the_client_checks_the_address_it_connects_to(loopback_port: int) -> None:
    """A public-looking name whose DNS answer points inside is refused in the connect step: nothing reaches
    the loopback server. The same server is reachable once the operator allows it."""
    before = _Counting.requests
    async with outbound_client(OutboundPolicy.allowing([], resolver=DNS)) as client:
        with pytest.raises(DestinationRefused, match="non-public"):
            await client.get(f"https://rebind.example:{loopback_port}/")
        with pytest.raises(DestinationRefused, match="https"):
            await client.get(f"http://public.example:{loopback_port}/")
    assert _Counting.requests == before
    async with outbound_client(OutboundPolicy.allowing(["127.0.0.1"]), max_response_bytes=10_000) as client:
        assert (await client.get(f"http://127.0.0.1:{loopback_port}/")).text == "ok"
        with pytest.raises(ResponseTooLarge):
            await client.get(f"http://127.0.0.1:{loopback_port}/big")
    assert _Counting.requests == before + 2


# --- over a real server ----------------------------------------------------------------------------------
async def test_a_byo_llm_error_does_not_echo_the_remote_body(
    connect: Connect, rt_server: LiveServer, loopback_port: int
) -> None:
    """The test server allows 127.0.0.1 (VOXGATE_HTTP_TOOLS_ALLOWED_HOSTS): the request is made, and the
    endpoint's answer stays in the server log."""
    async with rt_server.async_client() as rest:
        response = await rest.post(
            "/v1/agents",
            json={
                "name": "BYO",
                "system_prompt": "Be brief.",
                "voice": {"voice_id": "ivy"},
                "llm": [{"base_url": f"http://127.0.0.1:{loopback_port}/v1", "model": "m", "api_key": "k"}],
            },
        )
    assert response.status_code == 201, response.text
    client, _ = await ready_client(connect, agent_id=response.json()["id"])
    await client.send({"type": "reply.create"})
    await client.wait_for("reply.done", within=20)
    assert client.received and REMOTE_SECRET not in json.dumps(client.received)


async def test_private_byo_llm_and_transport_headers_are_refused(
    rt_server: LiveServer, connect: Connect
) -> None:
    async with rt_server.async_client() as rest:
        for base_url in (
            "https://169.254.169.254/v1",
            "https://[::ffff:10.0.0.1]/v1",
            "https://2130706433/v1",
        ):
            response = await rest.post(
                "/v1/agents",
                json={
                    "name": "BYO",
                    "system_prompt": "p",
                    "voice": {"voice_id": "ivy"},
                    "llm": [{"base_url": base_url, "model": "m"}],
                },
            )
            assert response.status_code == 422, response.text
            assert response.json()["param"] == "llm[0].base_url"
    client = await connect()
    await client.update(
        tools=[
            {
                "name": "t",
                "http": {"url": "https://api.example.com", "headers": [{"name": "Host", "value": "x"}]},
            }
        ]
    )
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.tools.0.http.headers.0.name"
