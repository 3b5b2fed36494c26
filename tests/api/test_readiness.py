"""Health reporting and the database file (issue #19): /readyz fails while the database does not take
writes (even though it still answers reads and /healthz stays up), and a 0-byte database file is refused
at start-up instead of starting silently empty."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.live_server import LiveServer, ServerStartError


def test_readyz_reports_a_database_that_takes_no_writes(live_server_factory: ServerFactory) -> None:
    server = live_server_factory()
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200
    with sqlite3.connect(server.data_dir / "voxgate.db") as database:
        database.execute("DROP TABLE readiness_probes")  # writes now fail; reads still work
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    response = httpx.get(f"{server.base_url}/readyz")
    assert response.status_code == 503 and response.json()["code"] == "unavailable"


def test_a_zero_byte_database_file_is_refused_at_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "voxgate.db").write_bytes(b"")
    server = LiveServer(tmp_path, startup_timeout=30)
    with pytest.raises(ServerStartError, match="is empty"):
        server.start()
    server.stop()
    assert (tmp_path / "voxgate.db").stat().st_size == 0
