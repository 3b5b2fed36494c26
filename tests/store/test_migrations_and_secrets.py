from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import inspect, text

from tests.store.conftest import Backend
from voxgate.store import Store
from voxgate.store.migrate import upgrade_to_head
from voxgate.store.secret_box import SECRET_KEY_FILE, SecretBox


async def test_migrations_create_the_schema_and_are_idempotent(store: Store) -> None:
    await upgrade_to_head(store.engine)  # second run: nothing to do
    async with store.engine.connect() as connection:
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert version == "0004_calls"
    assert {"projects", "api_keys", "agents", "tokens"} <= tables
    assert {"session_records", "webhook_subscriptions", "webhook_deliveries", "webhook_attempts"} <= tables


async def test_reopening_keeps_data(store: Store, backend: Backend) -> None:
    raw, _ = await store.keys.create("keep")
    again = await backend.open()
    try:
        assert await again.keys.verify(raw) is not None
    finally:
        await again.close()


def test_secret_key_file_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    key_file = tmp_path / SECRET_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ciphertext = box.encrypt("hello")
    assert "hello" not in ciphertext
    assert SecretBox.from_settings(None, tmp_path).decrypt(ciphertext) == "hello"
    assert list(tmp_path.iterdir()) == [key_file]


def test_configured_secret_key_passphrase_or_fernet_key(tmp_path: Path) -> None:
    passphrase = SecretBox.from_settings("correct horse battery staple", tmp_path)
    assert (
        SecretBox.from_settings("correct horse battery staple", tmp_path).decrypt(passphrase.encrypt("x"))
        == "x"
    )
    assert not (tmp_path / SECRET_KEY_FILE).exists()
    fernet_key = "k" * 43 + "="
    box = SecretBox.from_settings(fernet_key, tmp_path)
    assert SecretBox(fernet_key.encode()).decrypt(box.encrypt("y")) == "y"
