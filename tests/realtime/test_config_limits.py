"""session.update refuses what would break or starve the LLM (issue #19): malformed tool schemas."""

from __future__ import annotations

from tests.realtime.conftest import Connect, ready_client


async def test_malformed_tool_schema_is_invalid_value_and_the_session_can_go_on(connect: Connect) -> None:
    client = await connect()
    await client.update(tools=[{"type": "function", "name": "t", "parameters": {"properties": []}}])
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.tools.0.parameters"
    await client.update(system_prompt="x", tools=[{"type": "function", "name": "t"}])
    await client.wait_for("session.ready")


async def test_malformed_tool_schema_in_a_later_update_keeps_the_old_tools(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="x")
    await client.update(
        tools=[{"type": "function", "name": "t", "parameters": {"type": "object", "required": 7}}]
    )
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.tools.0.parameters" and "required" in error["message"]
    await client.update(system_prompt="y")
    assert (await client.next_event())["type"] == "session.updated"
