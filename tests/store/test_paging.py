"""Cursor encoding of store/paging.py: opaque, bound to its list and project, garbage refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voxgate.store.paging import InvalidCursor, Position, decode_cursor, encode_cursor

POSITION = Position(datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), "agent_" + "a" * 32)


def test_a_cursor_round_trips_and_does_not_spell_out_the_project() -> None:
    cursor = encode_cursor(POSITION, "agents:acme-project")
    assert decode_cursor(cursor, "agents:acme-project") == POSITION
    assert "acme" not in cursor and "=" not in cursor


@pytest.mark.parametrize("scope", ["agents:other-project", "sessions:acme-project", ""])
def test_a_cursor_of_another_list_or_project_is_refused(scope: str) -> None:
    with pytest.raises(InvalidCursor, match="another list or project"):
        decode_cursor(encode_cursor(POSITION, "agents:acme-project"), scope)


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage", "!!!", "e30", "bnVsbA", "W10", "eyJ2IjoyfQ", "x" * 513,
     "eyJ2IjoxLCJzIjoiIiwidCI6Im5vdyIsImkiOiJhIn0",  # t is not a timestamp
     "eyJ2IjoxLCJzIjoiIiwidCI6IjIwMjYtMDUtMDFUMTI6MDA6MDAiLCJpIjoiYSJ9",  # naive timestamp
     "eyJ2IjoxLCJzIjoiIiwidCI6IjIwMjYtMDUtMDFUMTI6MDA6MDArMDA6MDAiLCJpIjo1fQ"],  # id not a string
)  # fmt: skip
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "agents:p")
