"""The TwiML webhook: X-Twilio-Signature against the public URL, account check, errors, and the open-webhook
warning. The signature is computed here by hand from Twilio's documented algorithm (HMAC-SHA1 over the
URL followed by the sorted form fields, base64), independently of the ``twilio`` package."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.live_server import LiveServer
from tests.twilio.conftest import PhoneServer, call_form, parse_stream_twiml, phone_env
from tests.twilio.twilio_signing import twilio_signature

AUTH_TOKEN = "twilio-test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_BASE = "https://voice.example.com/voxgate"


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneServer]:
    data_dir = tmp_path_factory.mktemp("signed")
    record = data_dir / "llm-record.jsonl"
    env = phone_env(
        record,
        VOXGATE_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        VOXGATE_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        VOXGATE_PUBLIC_BASE_URL=PUBLIC_BASE,
    )
    with LiveServer(data_dir, env=env) as server:
        yield PhoneServer(server, record)


def post_webhook(
    server: LiveServer, query: dict[str, str], form: dict[str, str], signature: str | None
) -> httpx.Response:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return httpx.post(f"{server.base_url}/twilio/voice", params=query, data=form, headers=headers, timeout=10)


def test_signed_request_gets_a_stream_on_the_public_url(signed_server: PhoneServer) -> None:
    agent_id = signed_server.create_agent()
    form = call_form(AccountSid=ACCOUNT_SID)
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode({'agent_id': agent_id})}"
    response = post_webhook(
        signed_server.server, {"agent_id": agent_id}, form, twilio_signature(AUTH_TOKEN, public, form)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    url, parameters = parse_stream_twiml(response.text)
    assert url == "wss://voice.example.com/voxgate/twilio/media"
    assert parameters["agent_id"] == agent_id
    assert parameters["token"].startswith("vgt_")
    assert signed_server.server.api_key not in response.text


def test_unsigned_or_wrongly_signed_requests_are_forbidden(signed_server: PhoneServer) -> None:
    agent_id = signed_server.create_agent()
    server = signed_server.server
    form = call_form(AccountSid=ACCOUNT_SID)
    query = {"agent_id": agent_id}
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode(query)}"
    internal = f"{server.base_url}/twilio/voice?{urlencode(query)}"
    cases = {
        "no signature": None,
        "garbage": "not-a-signature",
        "other token": twilio_signature("another-token", public, form),
        "internal url": twilio_signature(AUTH_TOKEN, internal, form),
        "tampered form": twilio_signature(AUTH_TOKEN, public, {**form, "From": "+10000000000"}),
    }
    for case, signature in cases.items():
        response = post_webhook(server, query, form, signature)
        assert response.status_code == 403, case
        assert response.json()["code"] == "forbidden"


def test_other_account_is_forbidden_even_when_signed(signed_server: PhoneServer) -> None:
    agent_id = signed_server.create_agent()
    form = call_form(AccountSid="AC" + "2" * 32)
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode({'agent_id': agent_id})}"
    response = post_webhook(
        signed_server.server, {"agent_id": agent_id}, form, twilio_signature(AUTH_TOKEN, public, form)
    )
    assert response.status_code == 403


def test_unknown_or_missing_agent(signed_server: PhoneServer) -> None:
    form = call_form(AccountSid=ACCOUNT_SID)
    unknown = {"agent_id": "agent_" + "0" * 32}
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode(unknown)}"
    response = post_webhook(signed_server.server, unknown, form, twilio_signature(AUTH_TOKEN, public, form))
    assert response.status_code == 404 and response.json()["detail"] == "Agent not found"
    bare = f"{PUBLIC_BASE}/twilio/voice"
    response = post_webhook(signed_server.server, {}, form, twilio_signature(AUTH_TOKEN, bare, form))
    assert response.status_code == 422 and "agent_id" in response.json()["message"]


def test_agent_of_another_project_is_found_by_its_id(signed_server: PhoneServer) -> None:
    other_key = signed_server.server.create_api_key()
    with signed_server.server.client(headers=signed_server.server.auth_headers(other_key)) as client:
        created = client.post(
            "/v1/agents", json={"name": "p2", "system_prompt": "x", "voice": {"voice_id": "ivy"}}
        )
    agent_id = created.json()["id"]
    form = call_form(AccountSid=ACCOUNT_SID)
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode({'agent_id': agent_id})}"
    response = post_webhook(
        signed_server.server, {"agent_id": agent_id}, form, twilio_signature(AUTH_TOKEN, public, form)
    )
    assert response.status_code == 200


def test_open_webhook_is_announced_in_the_log(phone_server: PhoneServer) -> None:
    agent_id = phone_server.create_agent()
    phone_server.answer(agent_id)
    assert "UNAUTHENTICATED Twilio webhook" in phone_server.server.log_text()
