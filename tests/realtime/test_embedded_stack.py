"""End to end with the real embedded stack: a question synthesised with espeak-ng is spoken to the
server; the agent's spoken answer is transcribed again and must match its ``transcript.agent``."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.realtime.conftest import INSTANT_AUDIO_ENV, Connect
from tests.speech.fixtures import independent_transcript
from voxgate.audio.codecs import decode_audio
from voxgate.audio.resample import resample, to_float32
from voxgate.config import Settings

pytestmark = [
    pytest.mark.models,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def _espeak(text: str, tmp_path: Path) -> np.ndarray:
    wav = tmp_path / "question.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    raw = wav.read_bytes()
    data = raw[raw.index(b"data") + 8 :]
    pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
    return resample(to_float32(pcm), 22_050, 16_000)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "PYTHONPATH": SERVER_PYTHONPATH,
        "VOXGATE_MODEL_CACHE_DIR": str(Settings().effective_model_cache_dir),
        "VOXGATE_PRELOAD_MODELS": "true",
        **INSTANT_AUDIO_ENV,
    }
    server = LiveServer(tmp_path_factory.mktemp("embedded"), env=env, startup_timeout=180)
    with server:
        yield server


async def test_spoken_question_gets_a_spoken_answer(
    connect: Connect, embedded_server: LiveServer, tmp_path: Path
) -> None:
    client = await connect(embedded_server)
    await client.update(
        system_prompt="You are a helpful assistant. Answer in one short sentence.",
        input={"turn_detection": {"min_silence": 600}},
    )
    await client.wait_for("session.ready", within=60)
    question = _espeak("What is the capital city of France?", tmp_path)
    silence = np.zeros(16_000 * 2, np.float32)
    await client.send_audio(np.concatenate([silence[:8000], question, silence]))
    user = await client.wait_for("transcript.user", within=60)
    assert {"capital", "france"} <= _words(user["text"]), user
    agent = await client.wait_for("transcript.agent", within=90)
    done = await client.wait_for("reply.done", within=30)
    assert done["status"] == "completed" and agent["text"].strip()
    audio = b"".join(base64.b64decode(e["data"]) for e in client.received if e["type"] == "reply.audio")
    spoken = resample(to_float32(decode_audio("audio/pcm", audio)), 24_000, 16_000)
    assert spoken.size > 16_000 * 0.5

    heard = independent_transcript(spoken)  # the test's own listener, independent of the server
    expected, got = _words(agent["text"]), _words(heard)
    overlap = len(expected & got) / max(1, len(expected))
    assert overlap >= 0.6, (agent["text"], heard)
