"""Barge-in: sustained speech over the agent cuts the reply; back-channels do not (PROTOCOL.md §9)."""

from __future__ import annotations

from tests.doubles import LONG_STORY
from tests.realtime.conftest import Connect, ready_client, silence, utterance
from tests.realtime.protocol_client import ProtocolClient


async def _story_playing(client: ProtocolClient, audio_chunks: int = 16) -> dict:
    await client.send_audio(utterance("tell me a long story"))
    started = await client.wait_for("reply.started")
    for _ in range(audio_chunks):
        await client.wait_for("reply.audio")
    return started


async def test_interruption_trims_transcript_and_ledger(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    started = await _story_playing(client)
    mark = client.mark()
    await client.send_audio(utterance("wait stop I have another question", silence_ms=100))
    agent = await client.wait_for("transcript.agent")
    done = await client.wait_for("reply.done")
    types = client.non_audio_types(mark)
    assert types[:3] == ["input.speech.started", "transcript.agent", "reply.done"]
    assert agent["interrupted"] is True and done["status"] == "interrupted"
    assert agent["reply_id"] == started["reply_id"] == done["reply_id"]
    heard = agent["text"]
    assert heard and LONG_STORY.startswith(heard) and len(heard) < len(LONG_STORY) / 2
    # No audio of the interrupted reply after its reply.done.
    after = client.received[client.received.index(done) + 1 :]
    assert not [e for e in after if e["type"] == "reply.audio" and e["reply_id"] == started["reply_id"]]

    await client.send_audio(silence(1200))
    first = await client.wait_for("transcript.user")
    assert first["text"] == "wait stop I have another question"
    await client.wait_for("reply.done")
    await client.send_audio(utterance("what did you say before"))
    await client.wait_for("transcript.user", text="what did you say before")
    answer = await client.wait_for("transcript.agent", within=20)
    await client.wait_for("reply.done")
    # The LLM was shown the trimmed story (what was heard), never the full text.
    assert answer["text"].startswith(f"Before I said: {heard} | You said wait stop")
    assert LONG_STORY not in answer["text"]


async def test_backchannel_does_not_interrupt(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    started = await _story_playing(client, audio_chunks=8)
    mark = client.mark()
    await client.send_audio(utterance("uh-huh", speech_ms=600, silence_ms=600))
    agent = await client.wait_for("transcript.agent", within=20)
    done = await client.wait_for("reply.done")
    assert agent["interrupted"] is False and done["status"] == "completed"
    assert agent["text"] == LONG_STORY and done["reply_id"] == started["reply_id"]
    assert "input.speech.started" not in client.non_audio_types(mark)
    assert "transcript.user" not in client.non_audio_types(mark)


async def test_short_noise_does_not_interrupt(connect: Connect) -> None:
    client, _ = await ready_client(
        connect, greeting="Hello and welcome to the test line, how can I help you today?"
    )
    await client.wait_for("reply.audio")
    await client.send_audio(utterance("okay", speech_ms=200, silence_ms=500))
    agent = await client.wait_for("transcript.agent")
    assert agent["interrupted"] is False


async def test_interrupt_response_false_keeps_talking(connect: Connect) -> None:
    client, _ = await ready_client(connect, input={"turn_detection": {"interrupt_response": False}})
    await _story_playing(client, audio_chunks=8)
    mark = client.mark()
    await client.send_audio(utterance("wait stop I have another question", speech_ms=1500, silence_ms=600))
    agent = await client.wait_for("transcript.agent", within=20)
    assert agent["interrupted"] is False and agent["text"] == LONG_STORY
    assert (
        "input.speech.started"
        not in client.non_audio_types(mark)[: client.non_audio_types(mark).index("transcript.agent")]
    )


async def test_greeting_can_be_interrupted(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting=LONG_STORY)
    for _ in range(10):
        await client.wait_for("reply.audio")
    await client.send_audio(utterance("wait stop I have another question", silence_ms=100))
    agent = await client.wait_for("transcript.agent")
    assert agent["interrupted"] is True and LONG_STORY.startswith(agent["text"])
