"""Hardening (issue #19): agent versions, bound tokens, answered Twilio calls, readiness probes.

- ``agents.version``: partial updates compare and swap on it (store/agents.py).
- ``tokens.purpose``/``agent_id``/``api_key_id``: what a one-time token may open (a ``/v1/ws`` session,
  or the phone stream of one agent) and the API key that minted it (revoking the key stops it).
- ``answered_calls``: Twilio ``CallSid``s already answered, so a replayed signed webhook mints nothing.
- ``readiness_probes``: the row ``/readyz`` writes to prove the database takes writes.

Revision ID: 0003_hardening
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_hardening"
down_revision = "0002_session_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("tokens", sa.Column("purpose", sa.String(16), nullable=False, server_default="realtime"))
    op.add_column("tokens", sa.Column("agent_id", sa.String(64), nullable=True))
    op.add_column("tokens", sa.Column("api_key_id", sa.String(64), nullable=True))
    op.create_table(
        "answered_calls",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("answered_at", sa.DateTime(), nullable=False, index=True),
    )
    op.create_table(
        "readiness_probes",
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("readiness_probes")
    op.drop_table("answered_calls")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("api_key_id")
        batch.drop_column("agent_id")
        batch.drop_column("purpose")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("version")
