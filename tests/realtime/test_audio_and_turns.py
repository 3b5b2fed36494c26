"""Audio formats, volume, chunking (PROTOCOL.md §5.3, §6.9, §7.3, §7.8) and turn detection (§6.5-§7.5)."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import (
    INSTANT_AUDIO_ENV,
    Connect,
    doubles_env,
    ready_client,
    silence,
    utterance,
)
from voxgate.audio.codecs import decode_audio


@pytest.mark.parametrize(
    ("encoding", "chunk_bytes"), [("audio/pcm", 2400), ("audio/pcmu", 400), ("audio/pcma", 400)]
)
async def test_formats_in_and_out(connect: Connect, encoding: str, chunk_bytes: int) -> None:
    fmt = {"encoding": encoding}
    client, _ = await ready_client(connect, input={"format": fmt}, output={"format": fmt})
    await client.send_audio(utterance("hello there"), encoding=encoding)
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there"
    agent = await client.wait_for("transcript.agent")
    chunks = [base64.b64decode(e["data"]) for e in client.received if e["type"] == "reply.audio"]
    assert chunks and all(len(c) == chunk_bytes for c in chunks[:-1]) and len(chunks[-1]) <= chunk_bytes
    pcm = decode_audio(encoding, b"".join(chunks))
    rate = 24_000 if encoding == "audio/pcm" else 8_000
    words = len(agent["text"].split())
    assert abs(pcm.size / rate - words * 0.1) < 0.1  # the tone TTS speaks 100 ms per word
    assert np.abs(pcm.astype(np.int32)).max() > 4000  # the tone is at ~4900


async def test_volume_scales_output_and_is_mutable(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting="One two three four.", output={"volume": 100})
    await client.wait_for("reply.done")
    loud = np.abs(
        decode_audio(
            "audio/pcm",
            b"".join(base64.b64decode(e["data"]) for e in client.received if e["type"] == "reply.audio"),
        )
    ).max()
    await client.update(output={"volume": 25})
    await client.wait_for("session.updated")
    mark = len(client.received)
    await client.send({"type": "reply.create", "instructions": "SAY: One two three four."})
    await client.wait_for("reply.done")
    quiet = np.abs(
        decode_audio(
            "audio/pcm",
            b"".join(
                base64.b64decode(e["data"]) for e in client.received[mark:] if e["type"] == "reply.audio"
            ),
        )
    ).max()
    assert 0.2 < quiet / loud < 0.3
    await client.update(output={"volume": 0})
    await client.wait_for("session.updated")
    mark = len(client.received)
    await client.send({"type": "reply.create", "instructions": "SAY: Silent now."})
    await client.wait_for("reply.done")
    silent = [base64.b64decode(e["data"]) for e in client.received[mark:] if e["type"] == "reply.audio"]
    assert silent and not np.any(decode_audio("audio/pcm", b"".join(silent)))


async def test_reply_event_order_and_ids(connect: Connect) -> None:
    client, _ = await ready_client(connect, greeting="Hello, this is the greeting.")
    await client.wait_for("reply.done")
    types = client.types()[1:]
    assert types[0] == "reply.started" and types[-2:] == ["transcript.agent", "reply.done"]
    assert set(types[1:-2]) == {"reply.audio", "transcript.agent.delta"}
    started = client.received[1]
    assert started["item_id"].startswith("item_") and started["reply_id"].startswith("reply_")
    assert all(e["reply_id"] == started["reply_id"] for e in client.received[1:])


async def test_user_turn_event_order_with_growing_partials(connect: Connect) -> None:
    client, _ = await ready_client(connect)
    await client.send_audio(utterance("what is the weather in tokyo", speech_ms=2000))
    user = await client.wait_for("transcript.user")
    types = client.non_audio_types()[1:]
    assert types[0] == "input.speech.started"
    assert types.index("input.speech.stopped") < types.index("transcript.user")
    deltas = [e for e in client.received if e["type"] == "transcript.user.delta"]
    assert len(deltas) >= 2
    texts = [d["text"] for d in deltas]
    assert all(len(a) < len(b) and b.startswith(a) for a, b in itertools.pairwise(texts))
    assert all(d["item_id"] == user["item_id"] for d in deltas)
    assert types.index("transcript.user.delta") < types.index("input.speech.stopped")


async def test_keyterms_reach_the_stt_and_can_be_replaced(connect: Connect) -> None:
    client, _ = await ready_client(connect, input={"keyterms": ["Acme", "OrderPro"]})
    await client.send_audio(utterance("hello there"))
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there [keyterms: Acme, OrderPro]"
    await client.wait_for("reply.done")
    await client.update(input={"keyterms": ["Zed"]})
    await client.wait_for("session.updated")
    await client.send_audio(utterance("hello there"))
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there [keyterms: Zed]"


async def test_vad_threshold_is_honoured(connect: Connect) -> None:
    client, _ = await ready_client(connect, input={"turn_detection": {"vad_threshold": 0.9}})
    quiet = utterance("okay") * 0.12  # the energy VAD double scores this ~0.5
    await client.send_audio(np.concatenate([quiet, utterance("hello there")]))
    user = await client.wait_for("transcript.user")
    assert user["text"] == "hello there"
    assert client.non_audio_types().count("input.speech.started") == 1
    await client.wait_for("reply.done")
    await client.update(input={"turn_detection": {"vad_threshold": 0.3}})
    await client.wait_for("session.updated")
    await client.send_audio(quiet)
    user = await client.wait_for("transcript.user")
    assert user["text"] == "okay"


def _doubles_server(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[LiveServer]:
    """A server with the provider doubles (configured by ``env``) that takes whole utterances at once."""
    with LiveServer(tmp_path_factory.mktemp(name), env=doubles_env(**env, **INSTANT_AUDIO_ENV)) as server:
        yield server


@pytest.fixture(scope="module")
def silence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No end-of-turn model: turns end on the silence timers alone."""
    no_model = "tests.doubles:no_turn_detector"
    yield from _doubles_server(tmp_path_factory, "silence", VOXGATE_TURN_DETECTOR=no_model)


def _two_parts(pause_ms: float, phrase: str = "hello there") -> np.ndarray:
    return np.concatenate(
        [
            utterance(phrase, speech_ms=500, silence_ms=pause_ms),
            utterance(phrase, speech_ms=500)[1600:],
            silence(1500),
        ]
    )


async def test_min_silence_decides_turn_boundaries(connect: Connect, silence_server: LiveServer) -> None:
    client = await connect(silence_server)
    await client.update(input={"turn_detection": {"min_silence": 1000, "max_silence": 3000}})
    await client.wait_for("session.ready")
    await client.send_audio(_two_parts(700))  # a 700 ms pause < min_silence: one turn
    await client.wait_for("transcript.user")
    await client.wait_for("reply.done")
    assert client.non_audio_types().count("input.speech.started") == 1

    await client.update(input={"turn_detection": {"min_silence": 300}})  # merged per key
    await client.wait_for("session.updated")
    mark = client.mark()
    await client.send_audio(_two_parts(700))  # now the pause ends the first turn
    await client.wait_for("transcript.user")
    await client.wait_for("transcript.user")
    assert client.non_audio_types(mark).count("input.speech.stopped") == 2


async def test_an_explicit_min_silence_is_a_promise(connect: Connect) -> None:
    client = await connect()
    await client.update(input={"turn_detection": {"min_silence": 2500}})
    ready = await client.wait_for("session.ready")
    assert ready["config"]["input"]["turn_detection"]["min_silence"] == 2500
    assert "max_silence" not in ready["config"]["input"]["turn_detection"]  # not set: the default applies
    # Words that end a sentence, a model that says "complete": a 1.55 s pause still does not end the turn.
    await client.send_audio(_two_parts(1550, "Thanks, that's all I needed. Goodbye."))
    await client.wait_for("transcript.user")
    await client.wait_for("reply.done")
    assert client.non_audio_types().count("input.speech.stopped") == 1


async def test_the_default_reports_no_silences_and_ends_a_finished_sentence_quickly(connect: Connect) -> None:
    client = await connect()
    await client.update()
    ready = await client.wait_for("session.ready")
    assert not {"min_silence", "max_silence"} & set(ready["config"]["input"]["turn_detection"])
    await client.send_audio(_two_parts(700, "Thanks, that's all I needed. Goodbye."))
    await client.wait_for("transcript.user")
    await client.wait_for("transcript.user")
    assert client.non_audio_types().count("input.speech.stopped") == 2


@pytest.fixture(scope="module")
def unsure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The end-of-turn model is sure the user has not finished: only max_silence ends a turn."""
    yield from _doubles_server(tmp_path_factory, "unsure", VOXGATE_TEST_TURN_PROBABILITY="0.01")


async def test_max_silence_forces_the_end_of_turn(connect: Connect, unsure_server: LiveServer) -> None:
    client = await connect(unsure_server)
    await client.update(input={"turn_detection": {"min_silence": 300, "max_silence": 1200}})
    await client.wait_for("session.ready")
    await client.send_audio(_two_parts(900))  # 900 ms < max_silence: still one turn
    await client.wait_for("transcript.user")
    assert client.non_audio_types().count("input.speech.stopped") == 1


async def test_a_transcript_that_ends_a_sentence_overrules_a_hesitant_turn_model(
    connect: Connect, unsure_server: LiveServer
) -> None:
    client = await connect(unsure_server)
    await client.update()  # the adaptive default: min_silence and max_silence not set
    await client.wait_for("session.ready")
    # The model says "unfinished" (0.01), but the words end a sentence: the 700 ms pause ends the turn.
    await client.send_audio(_two_parts(700, "Thanks, that's all I needed. Goodbye."))
    first = await client.wait_for("transcript.user")
    second = await client.wait_for("transcript.user")
    assert first["text"] == second["text"] == "Thanks, that's all I needed. Goodbye."
    assert client.non_audio_types().count("input.speech.stopped") == 2


async def test_a_pause_after_a_number_does_not_end_the_turn_at_once(connect: Connect) -> None:
    client = await connect()
    await client.update()  # the adaptive default: min_silence and max_silence not set
    await client.wait_for("session.ready")
    # "Call me back at 555." reads as a finished sentence and the end-of-turn model says complete, but a
    # number may be the first group of a longer one: a 500 ms pause does not end the turn ...
    await client.send_audio(_two_parts(500, "Call me back at 555."))
    await client.wait_for("transcript.user")
    done = await client.wait_for("reply.done")
    assert done["status"] == "completed"  # not cut by the rest of the number
    # ... a 900 ms pause does.
    mark = client.mark()
    await client.send_audio(_two_parts(900, "Call me back at 555."))
    await client.wait_for("transcript.user")
    await client.wait_for("transcript.user")
    assert client.non_audio_types(mark).count("input.speech.stopped") == 2
    assert client.non_audio_types().count("input.speech.stopped") == 3


@pytest.fixture(scope="module")
def slow_turn_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The end-of-turn model takes 30 s to answer: a turn that waits for it ends only at max_silence."""
    yield from _doubles_server(tmp_path_factory, "slow-turn", VOXGATE_TEST_TURN_DELAY="30")


async def test_a_finished_sentence_ends_the_turn_without_waiting_for_the_turn_model(
    connect: Connect, slow_turn_model_server: LiveServer
) -> None:
    client = await connect(slow_turn_model_server)
    await client.update()  # the adaptive default: min_silence and max_silence not set
    await client.wait_for("session.ready")
    # Words that end a sentence: the 700 ms pause ends the turn although the model has not answered.
    await client.send_audio(_two_parts(700, "Thanks, that's all I needed. Goodbye."))
    await client.wait_for("transcript.user")
    await client.wait_for("transcript.user")
    assert client.non_audio_types().count("input.speech.stopped") == 2
    await client.wait_for("reply.done")

    # Words that do not end one: without the model's answer the turn waits for min_silence (one turn).
    mark = client.mark()
    await client.send_audio(_two_parts(700, "hello there"))
    await client.wait_for("transcript.user")
    await client.wait_for("reply.done")
    assert client.non_audio_types(mark).count("input.speech.stopped") == 1


@pytest.fixture(scope="module")
def slow_llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The LLM takes 2 s to answer: a reply is not ready to be heard for 2 s after the end of a turn."""
    yield from _doubles_server(tmp_path_factory, "slow-llm", VOXGATE_TEST_LLM_DELAY="2")


async def test_speech_before_the_reply_is_ready_continues_the_same_turn(
    connect: Connect, slow_llm_server: LiveServer
) -> None:
    client = await connect(slow_llm_server)
    await client.update()  # the adaptive default: min_silence and max_silence not set
    await client.wait_for("session.ready")
    # The words end a sentence, so the 400 ms pause ends the turn; the user goes on while the reply is
    # still being prepared: one turn, one transcript, one reply (no reply cut off by its own user).
    await client.send_audio(_two_parts(400, "Thanks, that's all I needed. Goodbye."))
    user = await client.wait_for("transcript.user")
    done = await client.wait_for("reply.done")
    assert done["status"] == "completed"
    types = client.non_audio_types()
    assert types.count("input.speech.started") == types.count("input.speech.stopped") == 2
    assert types.count("transcript.user") == 1 and types.count("reply.started") == 1
    assert types[-4:] == ["transcript.user", "reply.started", "transcript.agent", "reply.done"]
    stopped = [e for e in client.received if e["type"] == "input.speech.stopped"]
    deltas = [e for e in client.received if e["type"] == "transcript.user.delta"]
    assert all(e.get("item_id", user["item_id"]) == user["item_id"] for e in [*stopped, *deltas])
