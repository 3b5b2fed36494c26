"""``/v1/calls`` against a local fake of Twilio's REST Calls API, with Twilio's side of the call played by
the test: signed status callbacks, the signed voice webhook the placed call fetches, and a simulated Media
Streams peer on the stream it answers with. The server's public base URL is its own loopback address, so
every URL it gives Twilio is one the test can call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.doubles import MS_PER_WORD
from tests.live_server import LiveServer, free_port
from tests.twilio.conftest import PCMU, PhoneServer, call_form, parse_stream_twiml, phone_env
from tests.twilio.fake_twilio_api import FakeTwilioApi, running_fake_twilio
from tests.twilio.twilio_peer import SimulatedTwilio
from tests.twilio.twilio_signing import twilio_signature

ACCOUNT_SID = "AC" + "4" * 32
AUTH_TOKEN = "calls-api-test-token"
CALLER_ID = "+14155550100"
CALLEE = "+14155550123"


@dataclass
class CallsServer:
    phone: PhoneServer
    twilio: FakeTwilioApi

    @property
    def server(self) -> LiveServer:
        return self.phone.server

    def place(self, agent_id: str, call_sid: str, **body: Any) -> dict[str, Any]:
        """``POST /v1/calls`` (201) with the fake Twilio answering ``call_sid``."""
        self.twilio.reply_status = 201
        self.twilio.reply_body = {"sid": call_sid, "status": "queued", "account_sid": ACCOUNT_SID}
        with self.server.client() as http:
            response = http.post("/v1/calls", json={"to_number": CALLEE, "agent_id": agent_id, **body})
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CallsServer]:
    data_dir = tmp_path_factory.mktemp("calls")
    record = data_dir / "llm-record.jsonl"
    port = free_port()
    with running_fake_twilio() as twilio:
        env = phone_env(
            record,
            VOXGATE_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            VOXGATE_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            VOXGATE_TWILIO_API_BASE_URL=twilio.base_url,
            VOXGATE_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        with LiveServer(data_dir, env=env, port=port) as server:
            assert server.port == port
            yield CallsServer(PhoneServer(server, record), twilio)


def signed_post(url: str, form: dict[str, str], *, token: str = AUTH_TOKEN) -> httpx.Response:
    """POST ``form`` to ``url`` as Twilio does: form-encoded and signed for that exact URL."""
    headers = {"X-Twilio-Signature": twilio_signature(token, url, form)}
    return httpx.post(url, data=form, headers=headers, timeout=10)


def status_form(call_sid: str, status: str, **overrides: str) -> dict[str, str]:
    """The form fields of a Twilio status callback."""
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": CALLER_ID,
        "To": CALLEE,
        "ApiVersion": "2010-04-01",
        "CallbackSource": "call-progress-events",
        **overrides,
    }


async def call_when(
    server: LiveServer, call_id: str, ready: Callable[[dict[str, Any]], bool], within: float = 15.0
) -> dict[str, Any]:
    """``GET /v1/calls/{id}`` once ``ready(call)`` holds."""
    async with server.async_client() as http:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            call = (await http.get(f"/v1/calls/{call_id}")).json()
            if ready(call):
                return dict(call)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"call {call_id}: {call}")
            await asyncio.sleep(0.05)  # polling a REST resource: there is no event to await


async def test_an_outbound_call_connects_and_ends_with_its_session(calls: CallsServer) -> None:
    server = calls.server
    agent_id = calls.phone.create_agent(
        greeting="Hello, voxgate calling.", caller_id=CALLER_ID, input=PCMU, output=PCMU
    )
    call_sid = "CA" + "a" * 32
    placed = calls.place(agent_id, call_sid, some_future_field={"ignored": True})
    assert placed["status"] == "dialing" and placed["direction"] == "outbound"
    assert placed["from_number"] == CALLER_ID and placed["to_number"] == CALLEE  # from the agent's caller_id
    assert placed["agent_id"] == agent_id and placed["session_id"] is None

    request = calls.twilio.requests[-1]
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    form = request["form"]
    assert (form["To"], form["From"], form["Method"]) == (CALLEE, CALLER_ID, "POST")
    voice_url, status_url = form["Url"], form["StatusCallback"]
    assert urlsplit(voice_url).path == "/twilio/voice"
    assert parse_qs(urlsplit(voice_url).query) == {"agent_id": [agent_id], "call_id": [placed["id"]]}
    assert urlsplit(status_url).path == "/twilio/call-status"
    assert request["lists"]["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]

    # Twilio rings the callee, who answers: Twilio fetches the TwiML and opens the stream
    for status in ("initiated", "ringing", "in-progress"):
        assert signed_post(status_url, status_form(call_sid, status)).status_code == 204
    assert (await call_when(server, placed["id"], lambda c: True))["status"] == "dialing"
    answer = call_form(
        CallSid=call_sid, AccountSid=ACCOUNT_SID, From=CALLER_ID, To=CALLEE, Direction="outbound-api"
    )
    twiml = signed_post(voice_url, answer)
    assert twiml.status_code == 200, twiml.text
    stream_url, parameters = parse_stream_twiml(twiml.text)
    peer = await SimulatedTwilio.dial(stream_url, call_sid=call_sid, account_sid=ACCOUNT_SID)
    try:
        await peer.start(parameters)
        active = await call_when(server, placed["id"], lambda c: c["status"] == "active")
        assert active["session_id"] is not None and active["ended_at"] is None
        await peer.wait_until(lambda: peer.received_ms >= 2 * MS_PER_WORD - 1)  # the greeting is heard
        await peer.stop()
        async with asyncio.timeout(10):
            await peer.closed.wait()
    finally:
        await peer.close()

    ended = await call_when(server, placed["id"], lambda c: c["status"] == "ended")
    assert ended["session_id"] == active["session_id"] and ended["ended_at"] is not None
    assert ended["duration_seconds"] > 0
    async with server.async_client() as http:
        session = (await http.get(f"/v1/sessions/{ended['session_id']}")).json()
        assert session["agent_id"] == agent_id and session["channel"] == "phone"
        # Twilio's completed callback comes after the stream's end: nothing changes
        assert signed_post(status_url, status_form(call_sid, "completed")).status_code == 204
        assert (await http.get(f"/v1/calls/{placed['id']}")).json() == ended
        # the webhook answered once; the placed call is listed once, not again as an inbound call
        listed = (await http.get("/v1/calls", params={"direction": "inbound"})).json()["calls"]
        assert placed["id"] not in [c["id"] for c in listed]


def test_status_callbacks_must_be_signed_by_twilio(calls: CallsServer) -> None:
    agent_id = calls.phone.create_agent(greeting="Hi.", caller_id=CALLER_ID)
    call_sid = "CA" + "b" * 32
    placed = calls.place(agent_id, call_sid)
    status_url = calls.twilio.requests[-1]["form"]["StatusCallback"]
    form = status_form(call_sid, "busy")
    forged = {
        "no signature": {},
        "another token": {"X-Twilio-Signature": twilio_signature("not-the-token", status_url, form)},
        "another url": {
            "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, status_url.replace(placed["id"], "x"), form)
        },
        "tampered": {
            "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, status_url, {**form, "CallStatus": "ringing"})
        },
    }
    for case, headers in forged.items():
        response = httpx.post(status_url, data=form, headers=headers, timeout=10)
        assert response.status_code == 403, case
        body = response.json()
        assert body["code"] == "forbidden" and body["request_id"].startswith("req_"), case
    other_account = status_form(call_sid, "busy", AccountSid="AC" + "5" * 32)
    assert signed_post(status_url, other_account).status_code == 403
    with calls.server.client() as http:
        assert http.get(f"/v1/calls/{placed['id']}").json()["status"] == "dialing"
    assert signed_post(status_url, form).status_code == 204
    with calls.server.client() as http:
        refused = http.get(f"/v1/calls/{placed['id']}").json()
    assert refused["status"] == "refused" and refused["duration_seconds"] is None


def test_a_call_twilio_refuses_is_a_502_and_recorded_as_failed(calls: CallsServer) -> None:
    agent_id = calls.phone.create_agent(greeting="Hi.")
    calls.twilio.reply_status = 400
    calls.twilio.reply_body = {
        "code": 21211,
        "message": "The 'To' number +15005550001 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    with calls.server.client() as http:
        response = http.post(
            "/v1/calls", json={"to_number": "+15005550001", "from_number": CALLER_ID, "agent_id": agent_id}
        )
        assert response.status_code == 502
        body = response.json()
        assert body["code"] == "carrier_error" and "not a valid phone number" in body["message"]
        failed = http.get("/v1/calls", params={"status": "failed"}).json()["calls"]
    assert [c["to_number"] for c in failed if c["agent_id"] == agent_id] == ["+15005550001"]
    assert failed[0]["ended_at"] is not None


def test_calls_are_listed_with_paging_filters_and_project_isolation(calls: CallsServer) -> None:
    server = calls.server
    agent_id = calls.phone.create_agent(greeting="Hi.", caller_id=CALLER_ID)
    placed = [calls.place(agent_id, f"CA{n:032d}")["id"] for n in range(3)]
    # an inbound call answered by the voice webhook appears too
    inbound_sid = "CA" + "c" * 32
    answer = call_form(CallSid=inbound_sid, AccountSid=ACCOUNT_SID, From="+14155550777", To=CALLER_ID)
    voice_url = f"{server.base_url}/twilio/voice?agent_id={agent_id}"
    assert signed_post(voice_url, answer).status_code == 200
    with server.client() as http:
        inbound = http.get("/v1/calls", params={"direction": "inbound", "limit": 1}).json()
        assert inbound["calls"][0]["from_number"] == "+14155550777"
        assert inbound["calls"][0]["direction"] == "inbound" and inbound["calls"][0]["status"] == "dialing"

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"direction": "outbound", "status": "dialing", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/calls", params=params).json()
            assert set(page) == {"calls", "has_more", "response_metadata"}
            seen += [c["id"] for c in page["calls"]]
            cursor = page["response_metadata"]["next_cursor"]
            assert page["has_more"] == bool(cursor)
            if not cursor:
                break
        assert seen[:3] == placed[::-1]  # newest first
        assert all(c["direction"] == "outbound" for c in page["calls"])

        bad_cursor = http.get("/v1/calls", params={"cursor": "nope"})
        assert bad_cursor.status_code == 422 and bad_cursor.json()["param"] == "cursor"
        bad_status = http.get("/v1/calls", params={"status": "ringing"})
        assert bad_status.status_code == 422 and bad_status.json()["param"] == "status"

    other = server.create_api_key()
    with server.client(headers=server.auth_headers(other)) as http:
        assert http.get("/v1/calls").json()["calls"] == []
        missing = http.get(f"/v1/calls/{placed[0]}")
        assert missing.status_code == 404 and missing.json()["code"] == "call_not_found"
        unknown_agent = http.post("/v1/calls", json={"to_number": CALLEE, "agent_id": agent_id})
        assert unknown_agent.status_code == 404 and unknown_agent.json()["code"] == "agent_not_found"


def test_bad_requests_get_the_error_envelope(calls: CallsServer) -> None:
    without_caller_id = calls.phone.create_agent(greeting="Hi.")
    sent = len(calls.twilio.requests)
    cases: list[tuple[Any, int, str | None]] = [
        ({"agent_id": without_caller_id}, 422, "to_number"),
        ({"to_number": "555-0123", "agent_id": without_caller_id}, 422, "to_number"),
        ({"to_number": CALLEE, "from_number": 42, "agent_id": without_caller_id}, 422, "from_number"),
        ({"to_number": CALLEE}, 422, "agent_id"),
        ({"to_number": CALLEE, "agent_id": without_caller_id}, 422, "from_number"),  # no caller_id
        ({"to_number": CALLEE, "agent_id": "agent_nope", "from_number": CALLER_ID}, 404, "agent_id"),
        ([1, 2], 422, None),
    ]
    with calls.server.client() as http:
        for body, status, param in cases:
            response = http.post("/v1/calls", json=body)
            assert response.status_code == status, (body, response.text)
            assert response.json()["param"] == param, body
        malformed = http.post("/v1/calls", content=b"{nope", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 400
        assert http.get("/v1/calls/not a call id").status_code == 404
    assert len(calls.twilio.requests) == sent  # nothing reached Twilio


def test_without_twilio_settings_calls_cannot_be_placed(phone_server: PhoneServer) -> None:
    agent_id = phone_server.create_agent(greeting="Hi.", caller_id=CALLER_ID)
    with phone_server.server.client() as http:
        response = http.post("/v1/calls", json={"to_number": CALLEE, "agent_id": agent_id})
    assert response.status_code == 503
    assert response.json()["code"] == "telephony_not_configured"
