"""Bad input never crashes, hangs, leaks a task or closes a session that should stay open (§4.3, §11)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.realtime.conftest import Connect, ready_client
from tests.realtime.engine import close_session, make_session
from voxgate.api.realtime import frame_to_input
from voxgate.conversation.core import Phase

MAX_BYTES = 1_048_576
SENTINEL = '{"type": "x.sentinel"}'

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
session_objects = st.dictionaries(
    st.sampled_from(["system_prompt", "greeting", "input", "output", "tools", "colour", "llm"]),
    json_values,
    max_size=3,
) | st.fixed_dictionaries(
    {},
    optional={
        "system_prompt": st.text(max_size=30),
        "greeting": st.text(max_size=30),
        "output": st.fixed_dictionaries(
            {}, optional={"volume": st.integers(-5, 120), "voice": st.sampled_from(["ivy", "x"])}
        ),
        "input": st.fixed_dictionaries(
            {},
            optional={
                "turn_detection": st.dictionaries(
                    st.sampled_from(["vad_threshold", "min_silence", "max_silence", "interrupt_response"]),
                    json_values,
                )
            },
        ),
    },
)
structured = st.one_of(
    st.builds(lambda s: {"type": "session.update", "session": s}, session_objects),
    st.builds(
        lambda b: {"type": "input.audio", "audio": base64.b64encode(b).decode()}, st.binary(max_size=600)
    ),
    st.builds(lambda t: {"type": "input.audio", "audio": t}, json_values),
    st.builds(lambda c, r: {"type": "tool.result", "call_id": c, "result": r}, json_values, json_values),
    st.builds(lambda i: {"type": "reply.create", "instructions": i}, json_values),
    st.builds(
        lambda t, extra: {"type": t, **extra},
        st.text(max_size=15),
        st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    ),
    st.just({"type": "reply.cancel"}),
)
frames = st.one_of(
    st.text(max_size=60),
    st.builds(json.dumps, json_values),
    st.builds(json.dumps, structured),
)


async def _fuzz(tmp_path: Path, sequence: list[str]) -> None:
    before = set(asyncio.all_tasks())
    session, sink = make_session(tmp_path)
    task = asyncio.create_task(session.run())
    for frame in [*sequence, SENTINEL]:
        session.push(frame_to_input(frame, MAX_BYTES))
    # Every frame is answered in order: the sentinel's error proves nothing hung.
    await sink.wait_for(lambda e: e["type"] == "session.error" and "x.sentinel" in e["message"])
    assert session.phase is not Phase.ENDED and sink.close_code is None
    for event in sink.events:
        if event["type"] == "session.error":
            assert event["code"] in {
                "invalid_format",
                "invalid_value",
                "invalid_audio",
                "invalid_config",
                "immutable_field",
            }, event
    await close_session(session, task)
    await asyncio.sleep(0)
    leaked = {t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()}
    assert not leaked, leaked


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=12))
def test_fuzzed_frames_never_break_the_engine(tmp_path: Path, sequence: list[str]) -> None:
    asyncio.run(_fuzz(tmp_path, sequence))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=8))
def test_fuzzed_frames_after_ready(tmp_path: Path, sequence: list[str]) -> None:
    ready = json.dumps({"type": "session.update", "session": {"greeting": "Hello there, how are you?"}})
    asyncio.run(_fuzz(tmp_path, [ready, *sequence]))


async def test_bad_frames_over_the_wire_keep_the_session_open(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    for frame, param in (
        ("{not json", None),
        ("[1, 2]", None),
        ('{"no_type": 1}', "type"),
        ('{"type": 7}', "type"),
        ('{"type": "made.up"}', "type"),
        ('{"type": "input.audio"}', "audio"),
        ('{"type": "tool.result", "result": "x"}', "call_id"),
    ):
        await client.send(frame)
        error = await client.expect_error("invalid_format")
        assert error.get("param") == param, (frame, error)
    await client.send('{"type": "input.audio", "audio": 5}')
    assert (await client.expect_error("invalid_value"))["param"] == "audio"
    await client.send('{"type": "reply.create", "instructions": ["x"]}')
    assert (await client.expect_error("invalid_value"))["param"] == "instructions"
    await client.send(b"\x00\x01binary")
    await client.expect_error("invalid_format")
    await client.update(system_prompt="still here")
    assert (await client.next_event())["type"] == "session.updated"


async def test_undecodable_audio_is_invalid_audio(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send({"type": "input.audio", "audio": "!!!not base64!!!"})
    await client.expect_error("invalid_audio")
    await client.send({"type": "input.audio", "audio": base64.b64encode(b"\x01\x02\x03").decode()})
    await client.expect_error("invalid_audio")
    await client.update(system_prompt="open")
    assert (await client.next_event())["type"] == "session.updated"


async def test_giant_frame_is_invalid_format(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send({"type": "input.audio", "audio": "A" * (MAX_BYTES + 8)})
    error = await client.expect_error("invalid_format")
    assert "larger than" in error["message"]
    await client.update(system_prompt="open")
    assert (await client.next_event())["type"] == "session.updated"


async def test_frame_beyond_transport_limit_closes_1009(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send("x" * (17 * 1024 * 1024))
    assert await client.wait_closed() == 1009
