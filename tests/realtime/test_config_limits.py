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


LONG_PROMPT = "You help callers of the pizzeria with their orders. " * 1_900  # ~100,000 characters


async def test_a_system_prompt_over_the_token_budget_is_invalid_value(connect: Connect) -> None:
    client = await connect()
    await client.update(system_prompt=LONG_PROMPT)
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.system_prompt" and "tokens" in error["message"]
    await client.update(system_prompt="Be brief.")
    await client.wait_for("session.ready")


async def test_tools_over_the_token_budget_in_a_later_update_are_refused(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="Be brief.")
    tools = [{"type": "function", "name": f"t{i}", "description": "d" * 4_000} for i in range(4)]
    await client.update(tools=tools)
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.tools"
    await client.update(system_prompt="Still brief.")
    updated = await client.next_event()
    assert updated["type"] == "session.updated" and updated["config"]["tools"] == []
