"""The basic conversation: configure, greeting, one user turn, end."""

from __future__ import annotations

from tests.realtime.conftest import Connect, ready_client, utterance


async def test_greeting_then_turn_then_end(connect: Connect) -> None:
    client, session_id = await ready_client(connect, system_prompt="Be brief.", greeting="Hi there!")
    assert session_id.startswith("sess_")
    started = await client.wait_for("reply.started")
    transcript = await client.wait_for("transcript.agent")
    done = await client.wait_for("reply.done")
    assert transcript["text"] == "Hi there!"
    assert transcript["interrupted"] is False
    assert transcript["reply_id"] == started["reply_id"] == done["reply_id"]
    assert done["status"] == "completed"

    mark = client.mark()
    await client.send_audio(utterance("hello there"))
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there"
    await client.wait_for("reply.done")
    types = client.non_audio_types(mark)
    assert types[0] == "input.speech.started"
    assert types.index("input.speech.stopped") < types.index("transcript.user") < types.index("reply.started")
    agent = [e for e in client.received if e["type"] == "transcript.agent"][-1]
    assert agent["text"] == "You said hello there."

    await client.send({"type": "session.end"})
    ended = await client.wait_for("session.ended")
    assert ended["audio_duration_seconds"] > 2
    assert await client.wait_closed() == 1000
