"""Shared fixtures: real voxgate server processes (see tests/live_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``make(env=None, data_dir=None, **kwargs) -> LiveServer``: start servers that stop after the test.
    Each gets its own data dir under ``tmp_path`` unless one is given (share one to share a database)."""
    servers: list[LiveServer] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None, **kwargs: Any) -> LiveServer:
        directory = data_dir or tmp_path / f"server{len(servers)}"
        server = LiveServer(directory, env=env, **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server shared by a test module (REST-only defaults, models not preloaded)."""
    server = LiveServer(tmp_path_factory.mktemp("voxgate"))
    with server:
        yield server
