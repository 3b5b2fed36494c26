"""The examples in examples/ run against a real voxgate process (speech doubles) as documented in
examples/README.md: the Python client from a shell, the browser snippet in Chromium behind its token
server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import REPO_ROOT, launch_chromium, screenshot
from tests.browser.fake_microphone import Utterance, write_script
from tests.live_server import LiveServer, free_port

EXAMPLES = REPO_ROOT / "examples"
WEATHER = "what is the weather in tokyo"


def test_python_client(browser_server: LiveServer, tmp_path: Path) -> None:
    question = write_script(tmp_path / "question.wav", [Utterance(WEATHER, 0.3)], total_s=1.5)
    out = tmp_path / "reply.wav"
    run = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "python_client.py"),
            str(question),
            "--key",
            browser_server.api_key,
            "--url",
            browser_server.base_url,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert f"you:   {WEATHER}" in lines
    assert f"agent: You said {WEATHER}." in lines
    assert out.stat().st_size > 44 + 24_000  # more than half a second of agent speech


@pytest.fixture
def token_server(browser_server: LiveServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "VOXGATE_URL": browser_server.base_url, "VOXGATE_API_KEY": browser_server.api_key}
    env["PORT"] = str(port)
    with (tmp_path / "token_server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "browser" / "token_server.py")], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=2) as client:
            for _ in range(100):
                try:
                    client.get(url + "/")
                    break
                except httpx.TransportError:
                    if process.poll() is not None:
                        raise RuntimeError((tmp_path / "token_server.log").read_text()) from None
                    time.sleep(0.1)  # polling readiness: there is no event to await
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_browser_snippet(playwright_driver, token_server: str, artifacts: Path, tmp_path: Path) -> None:
    microphone = write_script(tmp_path / "microphone.wav", [Utterance(WEATHER, 1.5)], total_s=5.0)
    browser = launch_chromium(playwright_driver, microphone)
    try:
        page = browser.new_page()
        page.goto(token_server)
        page.get_by_role("button", name="Start").click()
        log = page.locator("#log")
        expect(log).to_contain_text("agent: Hi! Say something.", timeout=20_000)
        expect(log).to_contain_text(f"you: {WEATHER}", timeout=20_000)
        expect(log).to_contain_text(f"agent: You said {WEATHER}.", timeout=20_000)
        page.get_by_role("button", name="Stop").click()
        expect(log).to_contain_text("closed (1000)", timeout=20_000)
        screenshot(page, artifacts, "11-example-snippet")
    finally:
        browser.close()
