"""Built-in tools over a real server: ``GET /v1/builtin-tools``, and the Luhn check listed by name in a
stored agent's tools, run server-side in a session without the card number reaching any log line."""

from __future__ import annotations

import httpx

from tests.live_server import LiveServer
from tests.realtime.conftest import Connect, ready_client

CARD = "4539578763621486"
"""A Luhn-valid test number that appears nowhere else in the test suite."""
NOT_A_CARD = "4539578763621487"


def test_the_builtin_tools_are_listed(rt_server: LiveServer) -> None:
    with rt_server.client() as http:
        response = http.get("/v1/builtin-tools")
        assert response.status_code == 200
        tools = {tool["name"]: tool for tool in response.json()["builtin_tools"]}
        assert httpx.get(f"{rt_server.base_url}/v1/builtin-tools").status_code == 401
    assert {"aai_credit_card_luhn_check", "end_call", "transfer_call"} <= set(tools)
    for tool in tools.values():
        assert set(tool) == {"name", "description", "parameters", "execution_mode"}
        assert tool["description"] and tool["parameters"]["type"] == "object"
    assert tools["aai_credit_card_luhn_check"]["parameters"]["required"] == ["card_number"]


async def test_an_agent_gets_the_luhn_check_by_name(rt_server: LiveServer, connect: Connect) -> None:
    with rt_server.client() as http:
        created = http.post(
            "/v1/agents",
            json={
                "name": "payments",
                "system_prompt": "Take card payments.",
                "voice": {"voice_id": "ivy"},
                "tools": [{"name": "aai_credit_card_luhn_check"}],
                "input": {"type": "text"},
                "output": {"type": "text"},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["tools"][0]["name"] == "aai_credit_card_luhn_check"
    client, _ = await ready_client(connect, agent_id=created.json()["id"])
    for number, valid in ((CARD, "true"), (NOT_A_CARD, "false")):
        await client.send({"type": "conversation.message", "role": "user", "content": f"my card is {number}"})
        answer = await client.wait_for("transcript.agent")
        assert answer["text"] == f'Let me check that card. The tool said {{"valid": {valid}}}.'
        done = await client.wait_for("reply.done")
        assert done["status"] == "completed"
        assert answer["interrupted"] is False
    assert "tool.call" not in client.types()  # run by the server, not sent to the client
    await client.send({"type": "session.end"})
    await client.wait_for("session.ended")
    log = rt_server.log_path.read_text(encoding="utf-8")
    assert "session" in log  # the server does log the session
    assert CARD not in log and NOT_A_CARD not in log
