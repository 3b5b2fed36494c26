"""``voxgate call`` against a local fake of Twilio's REST Calls API (a real HTTP server on loopback)."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.twilio.conftest import PhoneServer
from tests.twilio.fake_twilio_api import FakeTwilioApi, running_fake_twilio

ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "outbound-test-token"
PUBLIC_BASE = "https://voice.example.com"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioApi]:
    with running_fake_twilio() as api:
        yield api


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
