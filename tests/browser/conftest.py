"""Browser fixtures: Debian's Chromium driven headless by Playwright, against a real voxgate process.

The server runs with the deterministic speech doubles (tests/doubles.py); the browser's microphone is
Chromium's fake capture device fed from a WAV written at test time (tests/browser/fake_microphone.py).
Screenshots go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("VOXGATE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium; ./dev.sh test does)"
        )
    with sync_playwright() as driver:
        yield driver


def launch_chromium(
    driver: Playwright, microphone_wav: Path | None, *, deny_microphone: bool = False
) -> Browser:
    """Headless system Chromium whose microphone plays ``microphone_wav`` once (or is denied)."""
    args = list(CHROMIUM_ARGS)
    args.append(
        "--use-fake-ui-for-media-stream=deny" if deny_microphone else "--use-fake-ui-for-media-stream"
    )
    if microphone_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone_wav}%noloop")
    return driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


@pytest.fixture
def browser_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A voxgate process of its own (tests may stop and restart it) with the speech doubles."""
    server = LiveServer(tmp_path / "server", env=doubles_env())
    with server:
        yield server


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def open_playground(browser: Browser, server: LiveServer, console: list[str] | None = None) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    if console is not None:
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.goto(server.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    return page


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A full-page PNG of the current state (scrolled to the top so the sticky header sits right)."""
    page.evaluate("window.scrollTo(0, 0)")
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
