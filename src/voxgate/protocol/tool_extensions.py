"""The hosted tool extensions (HOSTED.md §2): ``response_instructions`` and ``dtmf_collected_arguments``.

Both are stored on agents and carried into the session configuration. ``response_instructions`` reach the
model as a system message right after the tool's result (``conversation.ledger.result_messages``);
``dtmf_collected_arguments`` are not acted on yet. Like every configuration model they accept unknown
keys (``ConfigModel``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from voxgate.protocol.config_model import ConfigModel

MAX_RESPONSE_INSTRUCTION_CHARS = 500
MAX_DTMF_PROMPT_CHARS = 2_000
MAX_DTMF_ARGUMENTS = 32
KEYPAD_KEY_PATTERN = r"^[0-9*#]$"


class ResponseInstructions(ConfigModel):
    """What the agent should do with a tool's result, added to the model's context with that result."""

    success: str | None = Field(None, max_length=MAX_RESPONSE_INSTRUCTION_CHARS)
    error: str | None = Field(None, max_length=MAX_RESPONSE_INSTRUCTION_CHARS)


class DtmfCollectedArgument(ConfigModel):
    """On a phone call, one tool argument collected from keypad digits after the agent speaks ``prompt``."""

    parameter_name: str = Field(min_length=1, max_length=64)
    prompt: str = Field(max_length=MAX_DTMF_PROMPT_CHARS)
    min_digits: int = Field(ge=1, le=64)
    max_digits: int = Field(ge=1, le=64)
    terminator: str | None = Field(None, pattern=KEYPAD_KEY_PATTERN)
    timeout_seconds: float | None = Field(None, ge=1, le=300)
    confirm: bool | None = None
    sensitive: bool | None = None
    """Sensitive digits are never put in transcripts, logs or the model's context."""
    escalate_hotkey_disabled: bool | None = None

    @model_validator(mode="after")
    def _digit_bounds_ordered(self) -> DtmfCollectedArgument:
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must not exceed max_digits")
        return self
