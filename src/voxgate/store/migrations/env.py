"""Alembic environment. voxgate runs migrations itself (store/migrate.py) and hands over a connection."""

from __future__ import annotations

from alembic import context

from voxgate.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through voxgate (voxgate.store.migrate.upgrade_to_head)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
