"""Phone-stream tokens (issue #19): a signed voice webhook cannot be replayed to mint more, and the token
it mints opens only a phone stream, not a /v1/ws session."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.realtime.protocol_client import ProtocolClient
from tests.twilio.conftest import PhoneServer, call_form
from tests.twilio.test_webhook import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE, post_webhook, twilio_signature
from tests.twilio.test_webhook import signed_server as signed_server


def test_a_replayed_signed_webhook_mints_no_second_token(signed_server: PhoneServer) -> None:
    agent_id = signed_server.create_agent()
    form = call_form(AccountSid=ACCOUNT_SID)
    public = f"{PUBLIC_BASE}/twilio/voice?{urlencode({'agent_id': agent_id})}"
    signature = twilio_signature(AUTH_TOKEN, public, form)
    first = post_webhook(signed_server.server, {"agent_id": agent_id}, form, signature)
    assert first.status_code == 200, first.text
    for _ in range(3):
        replay = post_webhook(signed_server.server, {"agent_id": agent_id}, form, signature)
        assert replay.status_code == 409 and replay.json()["code"] == "conflict"
        assert "vgt_" not in replay.text
    other_call = call_form(AccountSid=ACCOUNT_SID)
    answer = post_webhook(
        signed_server.server,
        {"agent_id": agent_id},
        other_call,
        twilio_signature(AUTH_TOKEN, public, other_call),
    )
    assert answer.status_code == 200


async def test_a_phone_stream_token_does_not_open_a_realtime_session(phone_server: PhoneServer) -> None:
    agent_id = phone_server.create_agent()
    _, parameters = phone_server.answer(agent_id)
    client = await ProtocolClient.open(f"{phone_server.server.ws_url}?token={parameters['token']}")
    error = await client.expect_error("unauthorized")
    assert "token" in error["message"]
    assert await client.wait_closed() == 1008
