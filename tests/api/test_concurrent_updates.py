"""Concurrent partial PUTs of one agent (issue #19): none of the acknowledged changes is lost (SQLite;
tests/api/test_postgres_server.py runs the same on PostgreSQL)."""

from __future__ import annotations

from tests.api.concurrent_updates import assert_parallel_updates_all_land
from tests.live_server import LiveServer


def test_parallel_partial_updates_of_different_fields_all_land(live_server: LiveServer) -> None:
    assert_parallel_updates_all_land(live_server)
