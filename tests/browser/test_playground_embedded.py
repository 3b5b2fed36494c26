"""The playground page in a real Chromium against a server with the REAL embedded speech stack.

No doubles: Silero VAD, Whisper tiny.en, Qwen 0.5B (llama.cpp) and Piper run in the server process.
The fake microphone says a question synthesised at test time by voxgate's own PiperTTS (the packaged
joe voice, which Whisper tiny.en transcribes without errors), then silence. The page must show what
Whisper heard, the model's answer, and schedule the agent's audio for playback.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from playwright.sync_api import expect

from tests.browser.conftest import launch_chromium, open_playground, screenshot
from tests.browser.fake_microphone import write_speech
from tests.browser.test_playground import enter_key, panel_number
from tests.live_server import SERVER_PYTHONPATH, LiveServer
from tests.speech.fixtures import shared_piper_tts
from voxgate.audio.resample import to_float32
from voxgate.config import Settings

pytestmark = pytest.mark.models

QUESTION = "What is the capital of France?"
HEARD_QUESTION = re.compile(r"capital\W+of\W+france", re.IGNORECASE)
SYSTEM_PROMPT = "Answer in one short sentence."
SPEECH_START_S = 1.0
TRAILING_SILENCE_S = 4.0
"""More than the agent's min_silence (600 ms): the turn ends inside the file, not in Chromium's padding."""
FIRST_TURN_TIMEOUT_MS = 120_000
"""The first turn on a busy 2-core machine: VAD, Whisper, a cold LLM prefill, Piper (seconds each)."""
MIN_AGENT_SAMPLES = 6_000
"""A quarter of a second at the page's 24 kHz playback rate: shorter than any spoken word ("Paris.")."""


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A voxgate process with the default (embedded) speech stack, loaded before it answers /healthz.

    It shares the user's model cache, so the assembled LLM file is reused rather than rebuilt."""
    env = {
        "PYTHONPATH": SERVER_PYTHONPATH,
        "VOXGATE_MODEL_CACHE_DIR": str(Settings().effective_model_cache_dir),
        "VOXGATE_PRELOAD_MODELS": "true",
    }
    server = LiveServer(tmp_path_factory.mktemp("embedded-browser"), env=env, startup_timeout=180)
    with server:
        yield server


def piper_question(text: str) -> tuple[NDArray[np.float32], int]:
    """``text`` spoken by voxgate's PiperTTS (the packaged joe voice): float samples and their rate."""
    tts = shared_piper_tts()

    async def synthesize() -> NDArray[np.float32]:
        chunks = [to_float32(chunk) async for chunk in tts.synthesize(text, voice_id="ivy")]
        return np.concatenate(chunks)

    # A thread of its own: Playwright's sync API keeps an event loop running in the test's thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, synthesize()).result(), tts.sample_rate


def test_spoken_question_is_transcribed_and_answered_aloud(
    playwright_driver, embedded_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    speech, rate = piper_question(QUESTION)
    microphone = write_speech(
        tmp_path / "question.wav",
        speech,
        rate,
        start_s=SPEECH_START_S,
        total_s=SPEECH_START_S + len(speech) / rate + TRAILING_SILENCE_S,
    )
    with embedded_server.client() as rest:
        created = rest.post(
            "/v1/agents",
            json={
                "name": "Embedded agent",
                "system_prompt": SYSTEM_PROMPT,
                "voice": {"voice_id": "ivy"},
                "input": {"turn_detection": {"min_silence": 600}},
            },
        )
        assert created.status_code in (200, 201), created.text
    agent_id = created.json()["id"]

    browser = launch_chromium(playwright_driver, microphone)
    console: list[str] = []
    try:
        page = open_playground(browser, embedded_server, console)
        enter_key(page, embedded_server.api_key)
        expect(page.locator("#key-status")).to_have_text("Key accepted.")
        page.locator(f"#agent-list button[data-agent-id='{agent_id}']").click()
        expect(page.get_by_label("System prompt")).to_have_value(SYSTEM_PROMPT)

        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=FIRST_TURN_TIMEOUT_MS)
        transcript = page.locator("#transcript")

        # What Whisper heard, as the page shows it (case and punctuation aside).
        expect(transcript.locator(".turn.user").first).to_contain_text(
            HEARD_QUESTION, timeout=FIRST_TURN_TIMEOUT_MS
        )
        # The model's answer: a final agent bubble with words in it (not the "…" placeholder).
        answer = transcript.locator(".turn.agent[data-final=true] .text").first
        expect(answer).to_have_text(re.compile(r"\w"), timeout=FIRST_TURN_TIMEOUT_MS)
        # The answer was spoken: its audio was scheduled on the page's AudioContext.
        page.wait_for_function(
            "minimum => Number(document.querySelector('#talk-panel').dataset.samplesScheduled) > minimum",
            arg=MIN_AGENT_SAMPLES,
            timeout=FIRST_TURN_TIMEOUT_MS,
        )
        expect(page.locator("#latency-count")).not_to_have_text("0")
        expect(page.locator("#error-banner")).to_be_hidden()
        heard = transcript.locator(".turn.user .text").first.inner_text()
        scheduled = panel_number(page, "samples-scheduled")
        print(f"heard {heard!r}; answered {answer.inner_text()!r}; {scheduled} agent samples scheduled")
        screenshot(page, artifacts, "11-embedded-stack-answer")

        page.get_by_role("button", name="Hang up").click()
        expect(page.locator("#connection-state")).to_have_text("Call ended", timeout=FIRST_TURN_TIMEOUT_MS)
    finally:
        browser.close()
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console
