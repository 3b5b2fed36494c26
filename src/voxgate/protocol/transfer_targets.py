"""``transfer_targets`` of an agent (HOSTED.md §2): where a phone call may be handed over.

Stored and returned; the built-in transfer tool that uses them is not built yet.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxgate.protocol.config_model import ConfigModel

MAX_TRANSFER_TARGETS = 16
MAX_CONSULT_INSTRUCTIONS_CHARS = 2_000


class TransferTarget(ConfigModel):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["human", "agent"]
    phone_number: str | None = Field(None, max_length=32)
    agent_id: str | None = Field(None, max_length=128)
    mode: Literal["cold", "warm"] = "cold"
    consult_instructions: str | None = Field(None, max_length=MAX_CONSULT_INSTRUCTIONS_CHARS)
    ring_timeout_seconds: int | None = Field(None, ge=1, le=300)
    consult_timeout_seconds: int | None = Field(None, ge=1, le=3_600)
    record_consult: bool | None = None
