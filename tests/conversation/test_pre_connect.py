"""Pre-connect values: JSON paths, placeholders and defaults, as tables (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from voxgate.conversation.pre_connect import fill_placeholders, returned_values, value_at
from voxgate.protocol.config import PreConnectRequest

ANSWER = {"customer": {"name": "Ada", "tier": 2, "tags": ["vip", "new"]}, "orders": [{"id": "AB1"}]}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("customer.name", "Ada"),
        ("$.customer.name", "Ada"),
        ("customer.tier", 2),
        ("customer.tags[1]", "new"),
        ("orders[0].id", "AB1"),
        ("orders[3].id", None),
        ("customer.missing", None),
        ("customer.name.first", None),
    ],
)
def test_value_at(path: str, value: Any) -> None:
    assert value_at(ANSWER, path) == value


@pytest.mark.parametrize(
    ("text", "values", "filled"),
    [
        ("Hi {{name}}!", {"name": "Ada"}, "Hi Ada!"),
        ("Hi {{ name }}, tier {{tier}}.", {"name": "Ada", "tier": "2"}, "Hi Ada, tier 2."),
        ("Hi {{other}}!", {"name": "Ada"}, "Hi {{other}}!"),
        ("No placeholders.", {"name": "Ada"}, "No placeholders."),
        (None, {"name": "Ada"}, None),
    ],
)
def test_fill_placeholders(text: str | None, values: dict[str, str], filled: str | None) -> None:
    assert fill_placeholders(text, values) == filled


def test_returns_take_defaults_when_the_request_failed_or_the_path_is_missing() -> None:
    request = PreConnectRequest.model_validate(
        {
            "http": {"url": "https://crm.example.com/lookup"},
            "returns": [
                {"name": "name", "path": "customer.name", "default": "there"},
                {"name": "tier", "path": "customer.tier"},
                {"name": "plan", "path": "customer.plan", "default": "basic"},
                {"name": "note", "path": "customer.note"},
            ],
        }
    )
    assert returned_values(request, ANSWER) == {"name": "Ada", "tier": "2", "plan": "basic", "note": ""}
    assert returned_values(request, None) == {"name": "there", "tier": "", "plan": "basic", "note": ""}
