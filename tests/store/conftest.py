"""Store fixtures: every store test runs on a fresh SQLite file, and on PostgreSQL too when
``VOXGATE_TEST_POSTGRES_URL`` is set (each run in its own schema, dropped afterwards)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from voxgate.store import Store
from voxgate.store.secret_box import SecretBox

POSTGRES_URL = os.environ.get("VOXGATE_TEST_POSTGRES_URL")


@dataclass
class Backend:
    """How to open (and re-open) one test database."""

    url: str
    box: SecretBox
    connect_args: dict[str, Any]

    async def open(self) -> Store:
        return await Store.open_url(self.url, self.box, connect_args=self.connect_args)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    box = SecretBox(Fernet.generate_key())
    if request.param == "sqlite":
        yield Backend(f"sqlite+aiosqlite:///{tmp_path / 'voxgate.db'}", box, {})
        return
    if not POSTGRES_URL:
        pytest.skip("VOXGATE_TEST_POSTGRES_URL is not set")
    schema = "vg_test_" + secrets.token_hex(6)
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield Backend(POSTGRES_URL, box, {"server_settings": {"search_path": schema}})
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
