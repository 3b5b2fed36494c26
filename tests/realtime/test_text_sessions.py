"""Text sessions (HOSTED.md §5) over a real server: the user's words as conversation.message, replies as
transcript.agent.delta without audio; tools and resume work the same."""

from __future__ import annotations

from tests.realtime.conftest import Connect, ready_client, utterance

TEXT = {"input": {"type": "text"}, "output": {"type": "text"}}


async def test_a_text_turn_is_answered_in_text_deltas_without_audio(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="Be brief.", greeting="Hi! How can I help?", **TEXT)
    greeting = await client.wait_for("transcript.agent")
    assert greeting["text"] == "Hi! How can I help?"
    await client.wait_for("reply.done")
    mark = client.mark()
    await client.send(
        {"type": "conversation.message", "role": "user", "content": "what are your opening hours"}
    )
    user = await client.wait_for("transcript.user")
    assert user["text"] == "what are your opening hours"
    agent = await client.wait_for("transcript.agent")
    done = await client.wait_for("reply.done")
    assert agent["text"] == "You said what are your opening hours."
    assert done["status"] == "completed" and done["reply_id"] == agent["reply_id"]
    events = client.received[mark:]
    assert not [e for e in client.received if e["type"] == "reply.audio"]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.agent.delta"]
    assert deltas and "".join(deltas) == agent["text"]
    types = [e["type"] for e in events if e["type"] != "transcript.agent.delta"]
    assert types == ["transcript.user", "reply.started", "transcript.agent", "reply.done"]


async def test_the_conversation_goes_on_across_text_turns(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="Be brief.", **TEXT)
    await client.send({"type": "conversation.message", "role": "user", "content": "hello"})
    await client.wait_for("reply.done")
    await client.send({"type": "conversation.message", "role": "user", "content": "what did you say before"})
    agent = await client.wait_for("transcript.agent", text="Before I said: You said hello..")
    assert agent["interrupted"] is False


async def test_client_tools_work_in_a_text_session(connect: Connect) -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {}},
    }
    client, _ = await ready_client(connect, system_prompt="Be brief.", tools=[tool], **TEXT)
    await client.send({"type": "conversation.message", "role": "user", "content": "what is the weather"})
    call = await client.wait_for("tool.call")
    await client.wait_for("reply.done")
    await client.send({"type": "tool.result", "call_id": call["call_id"], "result": '{"sky": "clear"}'})
    agent = await client.wait_for("transcript.agent", text='The tool said {"sky": "clear"}.')
    assert agent["interrupted"] is False


async def test_text_input_with_spoken_replies(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="Be brief.", input={"type": "text"})
    await client.send({"type": "conversation.message", "role": "user", "content": "hello"})
    await client.wait_for("reply.audio")
    agent = await client.wait_for("transcript.agent")
    assert agent["text"] == "You said hello."


async def test_input_audio_is_refused_in_a_text_input_session(connect: Connect) -> None:
    client, _ = await ready_client(connect, system_prompt="Be brief.", **TEXT)
    await client.send_audio(utterance("hello there"))
    error = await client.expect_error("invalid_value")
    assert "text" in error["message"]
    await client.send({"type": "conversation.message", "role": "user", "content": "still here"})
    assert (await client.wait_for("transcript.agent"))["text"] == "You said still here."


async def test_a_text_session_resumes_with_its_conversation(connect: Connect) -> None:
    client = await connect()
    await client.update(system_prompt="Be brief.", **TEXT)
    ready = await client.wait_for("session.ready")
    await client.send({"type": "conversation.message", "role": "user", "content": "my name is Ada"})
    await client.wait_for("reply.done")
    await client.connection.close()  # the socket drops
    resumed = await connect(headers={"Authorization": f"Bearer {ready['resume_token']}"})
    await resumed.send({"type": "session.resume", "session_id": ready["session_id"]})
    ready_again = await resumed.wait_for("session.ready")
    assert ready_again["config"]["input"]["type"] == "text"
    await resumed.send({"type": "conversation.message", "role": "user", "content": "what did you say before"})
    agent = await resumed.wait_for("transcript.agent")
    assert agent["text"] == "Before I said: You said my name is Ada.."
