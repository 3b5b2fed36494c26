"""Prompt-size limits in tokens on REST (issue #19): a system prompt or tools that leave the server's LLM
no room for a conversation are refused when the agent is written, not on every reply.

These servers do not load the embedded model (VOXGATE_PRELOAD_MODELS=false), so tokens are estimated
(3 UTF-8 bytes a token) against VOXGATE_LLM_CONTEXT_TOKENS (4096) less the reply and the conversation."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import agent_body
from tests.conftest import ServerFactory

LONG_PROMPT = "You help callers of the pizzeria with their orders. " * 1_900  # ~100,000 characters
FITTING_PROMPT = "You help callers of the pizzeria with their orders. " * 150  # ~7,800 characters


def _tools(count: int, description_chars: int) -> list[dict[str, Any]]:
    return [
        {"name": f"tool_{i}", "description": "d" * description_chars, "parameters": {"type": "object"}}
        for i in range(count)
    ]


def test_a_system_prompt_within_the_character_limit_but_over_the_token_budget_is_422(
    client: httpx.Client,
) -> None:
    assert len(LONG_PROMPT) < 100_000
    response = client.post("/v1/agents", json=agent_body(system_prompt=LONG_PROMPT))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_value" and body["param"] == "system_prompt"
    assert "tokens" in body["message"] and "VOXGATE_LLM_CONTEXT_TOKENS" in body["message"]


def test_a_prompt_that_fits_is_stored(client: httpx.Client) -> None:
    response = client.post("/v1/agents", json=agent_body(system_prompt=FITTING_PROMPT))
    assert response.status_code == 201, response.text


def test_tools_that_overflow_the_budget_are_422_naming_tools(client: httpx.Client) -> None:
    body = agent_body(system_prompt=FITTING_PROMPT, tools=_tools(3, 4_000))
    response = client.post("/v1/agents", json=body)
    assert response.status_code == 422 and response.json()["param"] == "tools"


def test_an_update_is_checked_against_the_merged_agent(client: httpx.Client) -> None:
    record = client.post("/v1/agents", json=agent_body(system_prompt=FITTING_PROMPT, tools=[])).json()
    response = client.put(f"/v1/agents/{record['id']}", json={"tools": _tools(3, 4_000)})
    assert response.status_code == 422 and response.json()["param"] == "tools"
    response = client.put(f"/v1/agents/{record['id']}", json={"system_prompt": LONG_PROMPT})
    assert response.status_code == 422 and response.json()["param"] == "system_prompt"
    assert client.get(f"/v1/agents/{record['id']}").json() == record
    response = client.put(f"/v1/agents/{record['id']}", json={"tools": _tools(1, 400)})
    assert response.status_code == 200, response.text


def test_an_agent_with_its_own_llm_is_not_held_to_the_servers_budget(client: httpx.Client) -> None:
    own_llm = [{"base_url": "https://llm.example.com/v1", "model": "big", "api_key": "k"}]
    response = client.post("/v1/agents", json=agent_body(system_prompt=LONG_PROMPT, llm=own_llm))
    assert response.status_code == 201, response.text


def test_a_larger_context_setting_admits_a_longer_prompt(live_server_factory: ServerFactory) -> None:
    server = live_server_factory(env={"VOXGATE_LLM_CONTEXT_TOKENS": "40000"})
    with server.client() as client:
        response = client.post("/v1/agents", json=agent_body(system_prompt=LONG_PROMPT))
    assert response.status_code == 201, response.text
