"""REST test fixtures on one live server per module (tests/live_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer


def agent_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Support agent",
        "system_prompt": "You are a helpful support agent.",
        "voice": {"voice_id": "ivy"},
        "greeting": "Hi, how can I help?",
        "tools": [
            {
                "name": "lookup_order",
                "description": "Look up an order",
                "parameters": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                },
                "http": {
                    "url": "https://api.example.com/orders",
                    "http_method": "GET",
                    "headers": [{"name": "Authorization", "value": "Bearer tool-secret-1"}],
                },
            }
        ],
    }
    body.update(overrides)
    return body


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        yield http


@pytest.fixture
def anonymous(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30.0) as http:
        yield http
