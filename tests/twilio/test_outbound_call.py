"""``voxgate call`` against a local fake of Twilio's REST Calls API (a real HTTP server on loopback)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from tests.twilio.conftest import PhoneServer

ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "outbound-test-token"
PUBLIC_BASE = "https://voice.example.com"


@dataclass
class FakeTwilioApi:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    reply_status: int = 201
    reply_body: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioApi]:
    api = FakeTwilioApi(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            api.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "form": {k: v[0] for k, v in parse_qs(body).items()},
                }
            )
            payload = json.dumps(api.reply_body).encode()
            self.send_response(api.reply_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_call(
    phone_server: PhoneServer, api: FakeTwilioApi, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    process_env = phone_server.server.process_env()
    process_env.update(
        {
            "VOXGATE_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "VOXGATE_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "VOXGATE_TWILIO_API_BASE_URL": api.base_url,
            "VOXGATE_PUBLIC_BASE_URL": PUBLIC_BASE,
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "voxgate", "call", *args],
        cwd=phone_server.server.data_dir,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_call_is_placed_through_the_rest_api(phone_server: PhoneServer, fake_twilio: FakeTwilioApi) -> None:
    agent_id = phone_server.create_agent(greeting="Hi, this is voxgate calling.")
    fake_twilio.reply_body = {"sid": "CA" + "9" * 32, "status": "queued", "account_sid": ACCOUNT_SID}
    result = run_call(
        phone_server, fake_twilio, "--agent", agent_id, "--to", "+14155550123", "--from", "+14155550100"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CA" + "9" * 32
    assert "warning" not in result.stderr
    (request,) = fake_twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {expected_auth}"
    assert request["form"] == {
        "To": "+14155550123",
        "From": "+14155550100",
        "Url": f"{PUBLIC_BASE}/twilio/voice?{urlencode({'agent_id': agent_id})}",
        "Method": "POST",
    }


def test_twilio_refusal_is_reported(phone_server: PhoneServer, fake_twilio: FakeTwilioApi) -> None:
    agent_id = phone_server.create_agent()
    fake_twilio.reply_status = 400
    fake_twilio.reply_body = {
        "code": 21211,
        "message": "The 'To' number +15005550001 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    result = run_call(
        phone_server, fake_twilio, "--agent", agent_id, "--to", "+15005550001", "--from", "+14155550100"
    )
    assert result.returncode == 1
    assert "not a valid phone number" in result.stderr
    assert "no greeting" in result.stderr
    assert len(fake_twilio.requests) == 1


def test_bad_input_is_refused_before_calling_twilio(
    phone_server: PhoneServer, fake_twilio: FakeTwilioApi
) -> None:
    agent_id = phone_server.create_agent(greeting="Hello.")
    unknown = run_call(
        phone_server,
        fake_twilio,
        "--agent",
        "agent_missing",
        "--to",
        "+14155550123",
        "--from",
        "+14155550100",
    )
    assert unknown.returncode == 1 and "no agent" in unknown.stderr
    bad_number = run_call(
        phone_server, fake_twilio, "--agent", agent_id, "--to", "555-0123", "--from", "+14155550100"
    )
    assert bad_number.returncode == 1 and "E.164" in bad_number.stderr
    no_base = run_call(
        phone_server,
        fake_twilio,
        "--agent",
        agent_id,
        "--to",
        "+14155550123",
        "--from",
        "+14155550100",
        VOXGATE_PUBLIC_BASE_URL="",
    )
    assert no_base.returncode == 2 and "VOXGATE_PUBLIC_BASE_URL" in no_base.stderr
    no_credentials = run_call(
        phone_server,
        fake_twilio,
        "--agent",
        agent_id,
        "--to",
        "+14155550123",
        "--from",
        "+14155550100",
        VOXGATE_TWILIO_AUTH_TOKEN="",
    )
    assert no_credentials.returncode == 1 and "credentials" in no_credentials.stderr
    assert fake_twilio.requests == []
