"""A session's configuration is held to its LLM's prompt budget (speech.prompt_budget): a system prompt
or tools that leave no room for a conversation are ``invalid_value`` on ``session.update``, and the
configuration is not applied."""

from __future__ import annotations

from voxgate.config import Settings
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.errors import ErrorCode
from voxgate.protocol.events import ProtocolError
from voxgate.speech.prompt_budget import PromptBudget, tool_schemas


async def prompt_budget_error(settings: Settings, config: SessionConfig, llm: object) -> ProtocolError | None:
    """``invalid_value`` when ``config``'s system prompt and tools do not fit ``llm``'s budget; None when
    they do, or when the configuration brings its own LLM."""
    if config.llm:
        return None
    budget = PromptBudget.for_llm(settings, llm)
    refusal = await budget.refusal(config.system_prompt, tool_schemas(config.tools))
    if refusal is None:
        return None
    param = f"session.{refusal.field}"
    return ProtocolError(ErrorCode.INVALID_VALUE, f"{param}: {refusal.message}", param)
