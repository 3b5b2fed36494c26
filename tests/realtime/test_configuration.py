"""session.update / session.resume rules and their error codes (PROTOCOL.md §5.1, §6.2, §7.2, §11)."""

from __future__ import annotations

import httpx

from tests.live_server import LiveServer
from tests.realtime.conftest import Connect, ready_client


async def test_first_update_gets_ready_not_updated(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="x")
    await client.update(system_prompt="y")
    assert (await client.next_event())["type"] == "session.updated"
    assert "session.updated" not in client.types()[:1]


async def test_agent_id_mixed_with_inline_fields_is_invalid_value_and_session_stays_open(
    connect: Connect,
) -> None:
    client = await connect()
    await client.update(agent_id="abc", system_prompt="x")
    error = await client.expect_error("invalid_value")
    assert error["param"] == "agent_id" and "mutually exclusive" in error["message"]
    await client.update(system_prompt="x")
    await client.wait_for("session.ready")


async def test_unknown_agent_closes_with_1008(connect: Connect) -> None:
    client = await connect()
    await client.update(agent_id="agent_does_not_exist")
    await client.expect_error("agent_not_found")
    assert await client.wait_closed() == 1008


async def test_stored_agent_binds_config_and_later_agent_id_is_rejected(
    connect: Connect, rt_server: LiveServer
) -> None:
    async with rt_server.async_client() as rest:
        response = await rest.post(
            "/v1/agents",
            json={
                "name": "Greeter",
                "system_prompt": "Be kind.",
                "voice": {"voice_id": "james"},
                "greeting": "Welcome to the stored agent.",
            },
        )
        assert response.status_code == 201, response.text
        agent_id = response.json()["id"]
    client = await connect()
    await client.update(agent_id=agent_id)
    await client.wait_for("session.ready")
    greeting = await client.wait_for("transcript.agent")
    assert greeting["text"] == "Welcome to the stored agent."
    await client.wait_for("reply.done")
    await client.update(agent_id=agent_id)
    error = await client.expect_error("agent_id_not_first")
    assert error["param"] == "agent_id"
    await client.update(system_prompt="new prompt")
    assert (await client.next_event())["type"] == "session.updated"
    await client.update(output={"voice": "ivy"})
    error = await client.expect_error("immutable_field")
    assert error["param"] == "session.output.voice"


async def test_inline_llm_is_invalid_value(connect: Connect) -> None:
    client = await connect()
    await client.update(llm=[{"base_url": "https://example.com/v1", "model": "m", "api_key": "k"}])
    error = await client.expect_error("invalid_value")
    assert "BYO LLM" in error["message"]


async def test_inline_http_tool_is_invalid_value(connect: Connect) -> None:
    client = await connect()
    await client.update(tools=[{"type": "function", "name": "t", "http": {"url": "https://example.com/x"}}])
    error = await client.expect_error("invalid_value")
    assert error["param"] == "session.tools.0.http"


async def test_unknown_fields_are_ignored_with_a_log_line(connect: Connect, rt_server: LiveServer) -> None:
    client = await connect()
    tool = {
        "type": "function",
        "name": "book",
        "colour_hint": "red",
        "response_instructions": {"success": "Confirm the time.", "tone": "warm"},
        "dtmf_collected_arguments": [{"parameter_name": "pin", "prompt": "PIN?", "min_digits": 4,
                                      "max_digits": 4, "sensitive": True, "beep": 1}],
    }  # fmt: skip
    await client.update(
        system_prompt="x", colour="blue", input={"language_codes": ["en"]}, tools=[tool],
        pre_connect_requests=[{"http": {"url": "https://example.com"}}],
    )  # fmt: skip
    await client.wait_for("session.ready")
    assert "session.error" not in client.types()
    log = rt_server.log_text()
    assert "session.update: ignored unknown fields" in log
    for path in (
        "session.colour",
        "session.input.language_codes",
        "session.tools[0].colour_hint",
        "session.tools[0].response_instructions.tone",
        "session.tools[0].dtmf_collected_arguments[0].beep",
        "session.pre_connect_requests",
    ):
        assert path in log, path  # fmt: skip


async def test_known_fields_of_the_hosted_dialect_keep_their_errors(connect: Connect) -> None:
    client = await connect()
    bad_dtmf = {"parameter_name": "pin", "prompt": "PIN?", "min_digits": 70, "max_digits": 4}
    await client.update(tools=[{"type": "function", "name": "t", "dtmf_collected_arguments": [bad_dtmf]}])
    error = await client.expect_error("invalid_value")
    assert error["param"].startswith("session.tools.0.dtmf_collected_arguments.0")
    await client.update(
        tools=[{"type": "function", "name": "t", "response_instructions": {"error": "x" * 501}}]
    )
    assert (await client.expect_error("invalid_value"))["param"].startswith(
        "session.tools.0.response_instructions"
    )


async def test_wrong_value_types_are_invalid_value_with_param(connect: Connect) -> None:
    client = await connect()
    await client.update(system_prompt=42)
    assert (await client.expect_error("invalid_value"))["param"] == "session.system_prompt"
    await client.update(output={"voice": "nobody"})
    assert (await client.expect_error("invalid_value"))["param"] == "session.output.voice"
    await client.update(input={"turn_detection": {"vad_threshold": 3}})
    assert (await client.expect_error("invalid_value"))[
        "param"
    ] == "session.input.turn_detection.vad_threshold"
    await client.update(output={"format": {"encoding": "audio/pcm", "sample_rate": 16000}})
    assert (await client.expect_error("invalid_value"))["param"].startswith("session.output.format")
    await client.update()
    await client.wait_for("session.ready")


async def test_min_silence_above_max_silence_is_invalid_config(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.update(input={"turn_detection": {"min_silence": 5000, "max_silence": 1000}})
    error = await client.expect_error("invalid_config")
    assert error["param"] == "session.input.turn_detection.min_silence"


async def test_immutable_fields_are_reported_and_mutable_ones_applied(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting="Hi.", output={"voice": "ivy"})
    await client.wait_for("reply.done")
    await client.update(
        greeting="Other",
        output={"voice": "james", "format": {"encoding": "audio/pcmu"}, "volume": 50},
        system_prompt="SAY: Updated prompt works.",
    )
    params = {(await client.expect_error("immutable_field"))["param"] for _ in range(3)}
    assert params == {"session.greeting", "session.output.voice", "session.output.format"}
    assert (await client.next_event())["type"] == "session.updated"
    await client.send({"type": "reply.create"})
    agent = await client.wait_for("transcript.agent")
    assert agent["text"] == "Updated prompt works."


async def test_resending_same_immutable_value_is_not_an_error(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting="Hi.", output={"voice": "ivy"})
    await client.wait_for("reply.done")
    await client.update(greeting="Hi.", output={"voice": "ivy", "format": {"encoding": "audio/pcm"}})
    assert (await client.next_event())["type"] == "session.updated"


async def test_messages_before_ready_are_invalid_format(connect: Connect) -> None:
    client = await connect()
    for message in (
        {"type": "input.audio", "audio": "AAAA"},
        {"type": "tool.result", "call_id": "c", "result": "{}"},
        {"type": "reply.create"},
        {"type": "session.end"},
    ):
        await client.send(message)
        error = await client.expect_error("invalid_format")
        assert message["type"] in error["message"]
    await client.update()
    await client.wait_for("session.ready")


async def test_resume_after_ready_is_invalid_format(connect: Connect) -> None:
    client, session_id = await ready_client(connect)
    await client.send({"type": "session.resume", "session_id": session_id})
    await client.expect_error("invalid_format")
    await client.update(system_prompt="still open")
    assert (await client.next_event())["type"] == "session.updated"


async def test_legacy_paths_are_aliases(connect: Connect) -> None:
    for path in ("/v1/voice", "/v1/realtime"):
        client = await connect(path=path)
        await client.update()
        await client.wait_for("session.ready")


def test_rest_still_works(rt_server: LiveServer) -> None:
    assert httpx.get(f"{rt_server.base_url}/healthz").status_code == 200
