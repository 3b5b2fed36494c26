"""Server start-up, restart and the ``voxgate keys`` CLI, each on a fresh data directory."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import agent_body
from tests.conftest import ServerFactory
from tests.live_server import LiveServer, ServerStartError

KEY_PATTERN = re.compile(r"^\s+(vg_[A-Za-z0-9_\-]{20,})$", re.MULTILINE)


def test_agents_survive_a_restart_on_the_same_database(live_server_factory: ServerFactory) -> None:
    server = live_server_factory()
    with server.client() as client:
        record = client.post("/v1/agents", json=agent_body()).json()
    server.restart()
    with server.client() as client:
        assert client.get(f"/v1/agents/{record['id']}").json() == record
        assert [item["id"] for item in client.get("/v1/agents").json()["agents"]] == [record["id"]]
    key_file = server.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_first_start_prints_a_key_once(live_server_factory: ServerFactory) -> None:
    server = live_server_factory(env={"VOXGATE_API_KEY": ""})
    keys = KEY_PATTERN.findall(server.log_text())
    assert len(keys) == 1
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/v1/agents", headers={"Authorization": keys[0]}).status_code == 200
    server.restart()
    assert KEY_PATTERN.findall(server.log_text()) == keys  # not printed (nor created) again
    listed = server.cli("keys", "list").stdout
    assert keys[0][:12] in listed and keys[0] not in listed


def test_bootstrap_key_from_the_environment_creates_no_other_key(live_server_factory: ServerFactory) -> None:
    server = live_server_factory()
    assert KEY_PATTERN.findall(server.log_text()) == []
    rows = [line for line in server.cli("keys", "list").stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and "bootstrap" in rows[0] and "active" in rows[0]


def test_keys_cli_create_list_revoke(live_server_factory: ServerFactory) -> None:
    server: LiveServer = live_server_factory()
    created = server.cli("keys", "create", "--project", "team-b", "--label", "laptop")
    raw_key = created.stdout.strip()
    assert raw_key.startswith("vg_") and "team-b" in created.stderr
    listed = server.cli("keys", "list", "--project", "team-b").stdout
    assert raw_key[:12] in listed and raw_key not in listed and "laptop" in listed
    key_id = re.search(r"(key_[0-9a-f]+)", listed)
    assert key_id is not None
    with httpx.Client(base_url=server.base_url, headers={"Authorization": raw_key}) as client:
        assert client.get("/v1/agents").status_code == 200
        assert server.cli("keys", "revoke", key_id.group(1)).returncode == 0
        assert client.get("/v1/agents").status_code == 401
    assert "revoked" in server.cli("keys", "list", "--project", "team-b").stdout
    missing = server.cli("keys", "revoke", "key_nope", check=False)
    assert missing.returncode == 1 and "no single key" in missing.stderr


def test_a_configured_secret_key_replaces_the_key_file(live_server_factory: ServerFactory) -> None:
    server = live_server_factory(env={"VOXGATE_SECRET_KEY": "an operator passphrase"})
    with server.client() as client:
        assert client.post("/v1/agents", json=agent_body()).status_code == 201
    assert not (server.data_dir / "secret.key").exists()


def test_preloading_a_missing_model_fails_start_up_with_a_clear_message(tmp_path: Path) -> None:
    server = LiveServer(
        tmp_path / "preload",
        env={"VOXGATE_PRELOAD_MODELS": "true", "VOXGATE_TTS": "no_such_voxgate_module:make_tts"},
    )
    with pytest.raises(ServerStartError) as caught:
        server.start()
    message = str(caught.value)
    assert "could not load its speech models" in message and "no_such_voxgate_module" in message
    assert not server.running
