"""``voxgate talk --text`` (voxgate.text_chat) against a real server on loopback with deterministic
model doubles: inline and stored agents as text sessions, tool calls answered with an error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer
from tests.realtime.conftest import doubles_env
from voxgate.talk_client import main
from voxgate.text_chat import chat

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("text-chat"), env=doubles_env()) as live:
        yield live


async def test_inline_text_chat_streams_each_reply(server: LiveServer) -> None:
    written: list[str] = []
    replies = await chat(
        server.ws_url,
        server.api_key,
        ["hello", "what did you say before"],
        system_prompt="Be brief.",
        greeting="Hi!",
        write=written.append,
    )
    assert replies == ["Hi!", "You said hello.", "Before I said: Hi! | You said hello.."]
    printed = "".join(written)
    assert "> hello\nYou said hello.\n" in printed


async def test_a_stored_voice_agent_opens_as_a_text_session(server: LiveServer) -> None:
    async with server.async_client() as rest:
        created = await rest.post(
            "/v1/agents",
            json={
                "name": "Weather",
                "system_prompt": "Be brief.",
                "voice": {"voice_id": "ivy"},
                "tools": [WEATHER],
            },
        )
    assert created.status_code == 201, created.text
    written: list[str] = []
    replies = await chat(
        server.ws_url,
        server.api_key,
        ["what is the weather"],
        agent_id=created.json()["id"],
        write=written.append,
    )
    assert "[tool.call get_weather" in "".join(written)
    assert replies == ["Sorry, I could not get that answer. This client cannot run tools."]


def test_the_cli_chats_in_text(server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--text", "--url", server.ws_url, "--api-key", server.api_key, "--system-prompt", "Be brief."]
    assert main([*argv, "--say", "hello"]) == 0
    assert "You said hello." in capsys.readouterr().out
