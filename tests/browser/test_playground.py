"""The playground page in a real Chromium against a real voxgate process (speech doubles).

The page is driven like a person would: type the API key, create an agent in the form, press Talk.
The fake microphone "says" marker tones the tone STT double decodes into known phrases, so the asserted
texts are deterministic and prove the captured audio reached the server at the right sample rate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect

from tests.browser.conftest import launch_chromium, open_playground, screenshot
from tests.browser.fake_microphone import Utterance, write_script
from tests.doubles import LONG_STORY
from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env

WEATHER = "what is the weather in tokyo"
STORY = "tell me a long story"
BARGE_IN = "wait stop I have another question"
TOOL_RESULT = {"location": "Tokyo", "temp_c": 22, "sky": "sunny"}  # the page's default tool handler
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
EVENT_TIMEOUT_MS = 20_000


def panel_number(page: Page, name: str) -> int:
    return int(page.get_attribute("#talk-panel", f"data-{name}") or 0)


def enter_key(page: Page, key: str) -> None:
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Use key").click()


def create_agent(
    page: Page, name: str, *, greeting: str = "", tools: list[dict[str, object]] | None = None
) -> None:
    page.get_by_role("button", name="New agent").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Voice").select_option("james")
    page.get_by_label("System prompt").fill("You are a helpful weather assistant.")
    if greeting:
        page.get_by_label("Greeting").fill(greeting)
    page.get_by_label("Min silence (ms)").fill("600")
    page.get_by_label("Tools").fill(json.dumps(tools or []))
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#agent-form-status")).to_have_text("Saved.")
    expect(page.locator("#agent-list button[aria-current=true]")).to_contain_text(name)


def test_create_agent_talk_with_tool_and_barge_in(
    playwright_driver, browser_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    # The microphone timeline starts when the page opens the microphone (right after session.ready).
    microphone = write_script(
        tmp_path / "microphone.wav",
        [Utterance(WEATHER, 1.0), Utterance(STORY, 6.0), Utterance(BARGE_IN, 9.5)],
        total_s=14.0,
    )
    browser = launch_chromium(playwright_driver, microphone)
    console: list[str] = []
    try:
        page = open_playground(browser, browser_server, console)
        expect(page.get_by_role("button", name="Talk")).to_be_disabled()
        screenshot(page, artifacts, "01-start")

        enter_key(page, browser_server.api_key)
        expect(page.locator("#key-status")).to_have_text("Key accepted.")
        create_agent(page, "Weather bot", greeting="Hello from the weather desk.", tools=[WEATHER_TOOL])
        screenshot(page, artifacts, "02-agent-created")

        # The agent really is stored, with what the form said.
        with browser_server.client() as rest:
            [listed] = rest.get("/v1/agents").json()["agents"]
            stored = rest.get(f"/v1/agents/{listed['id']}").json()
        assert stored["name"] == "Weather bot"
        assert stored["voice"] == {"voice_id": "james"}
        assert stored["greeting"] == "Hello from the weather desk."
        assert stored["input"]["turn_detection"]["min_silence"] == 600
        assert [tool["name"] for tool in stored["tools"]] == ["get_weather"]

        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=EVENT_TIMEOUT_MS)
        transcript = page.locator("#transcript")
        agent_turns = transcript.locator(".turn.agent")
        expect(agent_turns.first).to_contain_text("Hello from the weather desk.", timeout=EVENT_TIMEOUT_MS)

        # The user's question, the client tool answered by the page's handler, the answer using it.
        expect(transcript.locator(".turn.user").first).to_have_text(f"You{WEATHER}", timeout=EVENT_TIMEOUT_MS)
        tool_row = transcript.locator(".turn.tool").first
        expect(tool_row).to_have_attribute("data-outcome", "sent", timeout=EVENT_TIMEOUT_MS)
        expect(tool_row).to_contain_text('get_weather({"location":"Tokyo"})')
        expect(tool_row).to_contain_text(json.dumps(TOOL_RESULT, separators=(",", ":")))
        expected_answer = f"The tool said {json.dumps(TOOL_RESULT, separators=(',', ':'))}."
        expect(transcript.locator(".turn.agent", has_text=expected_answer)).to_have_count(
            1, timeout=EVENT_TIMEOUT_MS
        )
        # Agent audio was played: the greeting and answers were scheduled on the page's AudioContext.
        assert panel_number(page, "samples-scheduled") > 24_000 // 2
        assert page.locator("#latency-count").inner_text() != "0"
        assert page.locator("#latency-last").inner_text().endswith(" ms")
        screenshot(page, artifacts, "03-tool-answer")

        # A long story starts playing; the user talks over it: playback is flushed at once.
        story_turn = transcript.locator(".turn.agent", has=page.locator(".latency")).nth(1)
        expect(transcript.locator(".turn.user").nth(1)).to_have_text(f"You{STORY}", timeout=EVENT_TIMEOUT_MS)
        expect(story_turn).to_be_visible(timeout=EVENT_TIMEOUT_MS)
        flushed_before = panel_number(page, "samples-flushed")
        expect(story_turn).to_have_class("turn agent interrupted", timeout=EVENT_TIMEOUT_MS)
        assert panel_number(page, "samples-flushed") > flushed_before
        heard = story_turn.locator(".text").inner_text()
        assert heard and LONG_STORY.startswith(heard.rstrip(".")) and len(heard) < len(LONG_STORY)
        expect(transcript.locator(".turn.user").nth(2)).to_have_text(
            f"You{BARGE_IN}", timeout=EVENT_TIMEOUT_MS
        )
        expect(transcript.locator(".turn.agent", has_text=f"You said {BARGE_IN}.")).to_have_count(
            1, timeout=EVENT_TIMEOUT_MS
        )
        screenshot(page, artifacts, "04-barge-in")

        page.get_by_role("button", name="Hang up").click()
        expect(page.locator("#connection-state")).to_have_text("Call ended", timeout=EVENT_TIMEOUT_MS)
        expect(page.get_by_role("button", name="Talk")).to_be_enabled()
        expect(page.locator("#error-banner")).to_be_hidden()
        screenshot(page, artifacts, "05-ended")
    finally:
        browser.close()
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console


def test_text_chat_with_the_selected_agent(
    playwright_driver, browser_server: LiveServer, artifacts: Path
) -> None:
    """The text box beside Talk: a text session with the same agent, its tools answered by the page."""
    browser = launch_chromium(playwright_driver, None)
    console: list[str] = []
    try:
        page = open_playground(browser, browser_server, console)
        enter_key(page, browser_server.api_key)
        create_agent(page, "Chat agent", greeting="Hello! Ask me anything.", tools=[WEATHER_TOOL])
        message = page.get_by_label("Message to the agent")
        message.fill("hello there")
        page.get_by_role("button", name="Send").click()
        transcript = page.locator("#transcript")
        expect(transcript.locator(".turn.agent").first).to_have_text("AgentHello! Ask me anything.")
        expect(transcript.locator(".turn.user")).to_have_text("Youhello there")
        expect(transcript.locator(".turn.agent").nth(1)).to_have_text("AgentYou said hello there.")
        message.fill(WEATHER)
        page.get_by_role("button", name="Send").click()
        expect(transcript.locator(".turn.tool")).to_contain_text("get_weather")
        expect(transcript.locator(".turn.agent").last).to_contain_text(
            f"The tool said {json.dumps(TOOL_RESULT, separators=(',', ':'))}", timeout=EVENT_TIMEOUT_MS
        )
        screenshot(page, artifacts, "08-text-chat")
        assert not [line for line in console if line.startswith(("error", "pageerror"))], console
    finally:
        browser.close()


def test_edit_and_delete_agent(playwright_driver, browser_server: LiveServer, artifacts: Path) -> None:
    browser = launch_chromium(playwright_driver, None)
    try:
        page = open_playground(browser, browser_server)
        enter_key(page, browser_server.api_key)
        create_agent(page, "Draft agent")
        # Edit: a server-side validation error is shown in words and marks the field.
        page.get_by_label("Tools").fill('[{"name": "bad name!"}]')
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#agent-form-error")).to_contain_text("tools[0].name")
        expect(page.get_by_label("Tools")).to_have_attribute("aria-invalid", "true")
        screenshot(page, artifacts, "06-validation-error")
        page.get_by_label("Tools").fill("[]")
        page.get_by_label("Name").fill("Renamed agent")
        page.get_by_label("User can interrupt").uncheck()
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#agent-list")).to_contain_text("Renamed agent")
        with browser_server.client() as rest:
            [listed] = rest.get("/v1/agents").json()["agents"]
            stored = rest.get(f"/v1/agents/{listed['id']}").json()
        assert stored["name"] == "Renamed agent"
        assert stored["input"]["turn_detection"]["interrupt_response"] is False

        # The key survives a reload of the tab (session storage).
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        expect(page.locator("#agent-list")).to_contain_text("Renamed agent")

        page.locator("#agent-list button", has_text="Renamed agent").click()
        delete = page.get_by_role("button", name="Delete")
        delete.click()
        page.get_by_role("button", name="Confirm delete").click()
        expect(page.locator("#agent-form-status")).to_have_text("Agent deleted.")
        expect(page.locator("#agent-list-empty")).to_be_visible()
        with browser_server.client() as rest:
            assert rest.get("/v1/agents").json()["agents"] == []
    finally:
        browser.close()


def test_wrong_key_is_explained_and_can_be_corrected(
    playwright_driver, browser_server: LiveServer, artifacts: Path
) -> None:
    browser = launch_chromium(playwright_driver, None)
    try:
        page = open_playground(browser, browser_server)
        enter_key(page, "vg_wrong_key")
        expect(page.locator("#error-banner")).to_contain_text("The API key was not accepted")
        expect(page.get_by_role("button", name="Talk")).to_be_disabled()
        assert page.evaluate("sessionStorage.getItem('voxgate.apiKey')") is None
        screenshot(page, artifacts, "07-wrong-key")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column, nothing cut off
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, artifacts, "07b-wrong-key-phone")
        page.set_viewport_size({"width": 1280, "height": 900})
        enter_key(page, browser_server.api_key)
        expect(page.locator("#key-status")).to_have_text("Key accepted.")
        expect(page.locator("#error-banner")).to_be_hidden()
    finally:
        browser.close()


def burn_token(server: LiveServer) -> str:
    """A token the server will refuse: minted, then redeemed once by a plain WebSocket client that
    opens a session and ends it."""
    from websockets.sync.client import connect

    with httpx.Client(base_url=server.base_url, headers=server.auth_headers()) as rest:
        token = rest.get("/v1/token", params={"expires_in_seconds": 60}).json()["token"]
    with connect(f"{server.ws_url}?token={token}", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "session.update", "session": {"system_prompt": "burn"}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "session.ready"
        ws.send(json.dumps({"type": "session.end"}))
        while json.loads(ws.recv(timeout=10))["type"] != "session.ended":
            pass
    return token


def test_reused_token_is_explained_and_retry_works(
    playwright_driver, browser_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    microphone = write_script(tmp_path / "microphone.wav", [Utterance(WEATHER, 1.0)], total_s=4.0)
    browser = launch_chromium(playwright_driver, microphone)
    try:
        page = open_playground(browser, browser_server)
        enter_key(page, browser_server.api_key)
        create_agent(page, "Token agent")
        used = burn_token(browser_server)

        # The page mints a token as usual, but the response it gets holds an already used token.
        def stale_token(route):  # type: ignore[no-untyped-def]
            route.fulfill(json={"token": used, "expires_in_seconds": 60})

        page.route("**/v1/token?*", stale_token)
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#error-banner")).to_contain_text("expired or was already used")
        expect(page.locator("#connection-state")).to_have_text("Disconnected (error)")
        expect(page.get_by_role("button", name="Talk")).to_be_enabled()
        screenshot(page, artifacts, "08-reused-token")

        page.unroute("**/v1/token?*")
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=EVENT_TIMEOUT_MS)
        expect(page.locator("#error-banner")).to_be_hidden()
        expect(page.locator("#transcript .turn.user").first).to_have_text(
            f"You{WEATHER}", timeout=EVENT_TIMEOUT_MS
        )
        page.get_by_role("button", name="Hang up").click()
        expect(page.locator("#connection-state")).to_have_text("Call ended", timeout=EVENT_TIMEOUT_MS)
    finally:
        browser.close()


def test_server_gone_mid_call_resume_attempt_and_retry(
    playwright_driver, browser_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    microphone = write_script(tmp_path / "microphone.wav", [Utterance(WEATHER, 1.0)], total_s=4.0)
    browser = launch_chromium(playwright_driver, microphone)
    try:
        page = open_playground(browser, browser_server)
        enter_key(page, browser_server.api_key)
        create_agent(page, "Resilient agent")
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=EVENT_TIMEOUT_MS)
        expect(page.locator("#transcript .turn.user").first).to_have_text(
            f"You{WEATHER}", timeout=EVENT_TIMEOUT_MS
        )

        # The server goes away mid-call: the page says so and keeps trying to resume the session.
        port = browser_server.port
        browser_server.stop()
        expect(page.locator("#connection-state")).to_have_text("Reconnecting…")
        expect(page.locator("#transcript")).to_contain_text("The connection dropped")
        expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
        screenshot(page, artifacts, "09-server-gone-reconnecting")

        # It comes back (same port), but a restarted single process has no memory of the session:
        # the page's session.resume is refused and it says so in words, back to idle.
        browser_server.port = port
        browser_server.start()
        assert browser_server.port == port, "the port was taken meanwhile; the page cannot follow"
        expect(page.locator("#error-banner")).to_contain_text(
            "could not be resumed", timeout=EVENT_TIMEOUT_MS
        )
        expect(page.locator("#connection-state")).to_have_text("Disconnected (error)")
        screenshot(page, artifacts, "09b-resume-refused")

        # A new call works.
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=EVENT_TIMEOUT_MS)
        expect(page.locator("#error-banner")).to_be_hidden()
        expect(page.locator("#transcript .turn.user").first).to_have_text(
            f"You{WEATHER}", timeout=EVENT_TIMEOUT_MS
        )

        # Gone again: the user cancels the reconnection; Talk while the server is down fails in words.
        browser_server.stop()
        expect(page.locator("#connection-state")).to_have_text("Reconnecting…")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#connection-state")).to_have_text("Call ended")
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#error-banner")).to_contain_text("Cannot reach the voxgate server")
        expect(page.get_by_role("button", name="Talk")).to_be_enabled()
    finally:
        browser.close()


def test_resume_after_server_restart_with_redis_keeps_the_conversation(
    playwright_driver, tmp_path: Path, artifacts: Path
) -> None:
    """With checkpoints in Redis, a restarted server still has the session: the page resumes it on a
    new connection (fresh token) and the conversation goes on with its history."""
    redis_url = os.environ.get("VOXGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
    try:
        redis.Redis.from_url(redis_url).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {redis_url}")
    microphone = write_script(
        tmp_path / "microphone.wav",
        [Utterance(WEATHER, 1.0), Utterance("what did you say before", 14.0)],
        total_s=18.0,
    )
    # The spec's 30 s grace window, not the doubles' 3 s: restarting the server takes ~3 s on a slow CPU.
    env = doubles_env(VOXGATE_REDIS_URL=redis_url, VOXGATE_RESUME_GRACE_SECONDS="30")
    server = LiveServer(tmp_path / "server", env=env)
    browser = launch_chromium(playwright_driver, microphone)
    try:
        server.start()
        page = open_playground(browser, server)
        enter_key(page, server.api_key)
        create_agent(page, "Sticky agent")
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#connection-state")).to_have_text("Live", timeout=EVENT_TIMEOUT_MS)
        first_answer = f"You said {WEATHER}."
        expect(page.locator("#transcript .turn.agent", has_text=first_answer)).to_have_count(
            1, timeout=EVENT_TIMEOUT_MS
        )
        session_line = page.locator("#transcript .turn.system").first.inner_text()

        server.restart()
        expect(page.locator("#transcript")).to_contain_text("resumed", timeout=EVENT_TIMEOUT_MS)
        expect(page.locator("#connection-state")).to_have_text("Live")
        resumed_line = page.locator("#transcript .turn.system", has_text="resumed").inner_text()
        assert session_line.split("session ")[1] in resumed_line  # the same session id
        expect(
            page.locator("#transcript .turn.agent", has_text=f"Before I said: {first_answer}")
        ).to_have_count(1, timeout=EVENT_TIMEOUT_MS)
        screenshot(page, artifacts, "09c-resumed")
    finally:
        browser.close()
        server.stop()


def test_microphone_denied_is_explained_and_can_be_retried(
    playwright_driver, browser_server: LiveServer, artifacts: Path
) -> None:
    browser = launch_chromium(playwright_driver, None, deny_microphone=True)
    try:
        page = open_playground(browser, browser_server)
        enter_key(page, browser_server.api_key)
        create_agent(page, "Deaf agent")
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#error-banner")).to_contain_text("Microphone access was denied")
        expect(page.locator("#connection-state")).to_have_text("Disconnected (error)")
        expect(page.get_by_role("button", name="Talk")).to_be_enabled()
        screenshot(page, artifacts, "10-microphone-denied")
        # Pressing Talk again gives the same clear answer (no stuck state).
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#transcript .turn.system.error")).to_have_count(1)
        expect(page.locator("#error-banner")).to_contain_text("Microphone access was denied")
    finally:
        browser.close()
