"""How much of the LLM's context a configuration's system prompt and tools may take, in tokens.

A configuration (an agent on REST, a ``session.update``) whose system prompt and tools do not leave room
for a conversation is refused when it is made, with ``invalid_value`` naming ``system_prompt`` or
``tools``, instead of failing (or tying up the shared embedded LLM) on every reply.

The budget is the LLM's context (``VOXGATE_LLM_CONTEXT_TOKENS``) minus the reply budget (the tokens a
reply may generate) minus :data:`CONVERSATION_RESERVE_TOKENS` for the caller's words and the latest
turns. Tokens are counted

- exactly, with the model's own tokenizer and chat template, when the LLM in use can count them
  (:class:`PromptTokenCounting`: the embedded llama.cpp model once it is loaded);
- otherwise by a conservative estimate, :data:`ESTIMATE_BYTES_PER_TOKEN` UTF-8 bytes per token (English
  averages about 4 bytes per token on the packaged model, so the estimate over-counts natural text).

A session or agent with a bring-your-own LLM (``llm``) is not held to this budget: it does not use the
server's LLM, and its provider reports its own limit.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from voxgate.config import Settings
from voxgate.speech.base import ToolSchema

DEFAULT_REPLY_TOKENS = 200
"""The most tokens one reply of the embedded LLM generates."""
CONVERSATION_RESERVE_TOKENS = 256
"""Room kept for the conversation beside the system prompt and tools (at least the caller's last turn)."""
ESTIMATE_BYTES_PER_TOKEN = 3
TEMPLATE_OVERHEAD_TOKENS = 32
"""The chat template's framing around the system prompt, in the estimate."""
TOOLS_TEMPLATE_OVERHEAD_TOKENS = 160
"""The chat template's instructions for tool calling, added once when there are tools (the packaged
model's template takes about 120 tokens for them)."""

PromptField = Literal["system_prompt", "tools"]


@runtime_checkable
class PromptTokenCounting(Protocol):
    """An LLM that can count a prompt's tokens without evaluating it (the embedded llama.cpp model)."""

    context_tokens: int
    max_tokens: int
    """The reply budget: the most tokens a reply generates."""

    def count_prompt_tokens(self, system_prompt: str, tools: Sequence[ToolSchema]) -> int:
        """Tokens that the system prompt and the tools take in a prompt, the chat template included."""
        ...


@dataclass(frozen=True, slots=True)
class PromptRefusal:
    field: PromptField
    message: str


def estimate_prompt_tokens(system_prompt: str, tools: Sequence[ToolSchema]) -> int:
    tool_text = json.dumps([tool.as_openai_tool() for tool in tools], ensure_ascii=False) if tools else ""
    size = len(system_prompt.encode("utf-8", "replace")) + len(tool_text.encode("utf-8", "replace"))
    overhead = TEMPLATE_OVERHEAD_TOKENS + (TOOLS_TEMPLATE_OVERHEAD_TOKENS if tools else 0)
    return math.ceil(size / ESTIMATE_BYTES_PER_TOKEN) + overhead


def tool_schemas(tools: Iterable[Any]) -> list[ToolSchema]:
    """The LLM's view of tools given as ``ToolSpec`` models or as stored dicts."""
    schemas: list[ToolSchema] = []
    for tool in tools:
        if isinstance(tool, Mapping):
            schemas.append(ToolSchema(tool["name"], tool.get("description", ""), tool.get("parameters", {})))
        else:
            schemas.append(ToolSchema(tool.name, tool.description, tool.parameters))
    return schemas


@dataclass(frozen=True, slots=True)
class PromptBudget:
    available_tokens: int
    counter: PromptTokenCounting | None = None
    """Counts exactly; None: the estimate."""

    @classmethod
    def for_llm(cls, settings: Settings, llm: object | None) -> PromptBudget:
        """The budget of ``llm`` (the server's LLM in use), or of the configured context when it cannot
        count tokens (not loaded yet, or a remote provider)."""
        if isinstance(llm, PromptTokenCounting):
            return cls(llm.context_tokens - llm.max_tokens - CONVERSATION_RESERVE_TOKENS, llm)
        return cls(settings.llm_context_tokens - DEFAULT_REPLY_TOKENS - CONVERSATION_RESERVE_TOKENS)

    def count(self, system_prompt: str, tools: Sequence[ToolSchema]) -> int:
        if self.counter is not None:
            return self.counter.count_prompt_tokens(system_prompt, tools)
        return estimate_prompt_tokens(system_prompt, tools)

    async def refusal(self, system_prompt: str, tools: Sequence[ToolSchema]) -> PromptRefusal | None:
        """Why ``system_prompt`` with ``tools`` does not fit, or None. Counting runs in a worker thread
        (a long prompt takes tens of milliseconds to tokenize)."""
        return await asyncio.to_thread(self._refusal, system_prompt, list(tools))

    def _refusal(self, system_prompt: str, tools: list[ToolSchema]) -> PromptRefusal | None:
        total = self.count(system_prompt, tools)
        if total <= self.available_tokens:
            return None
        prompt_only = self.count(system_prompt, []) if tools else total
        how = "" if self.counter is not None else " (estimated)"
        if prompt_only > self.available_tokens:
            return PromptRefusal(
                "system_prompt",
                f"the system prompt takes {prompt_only} tokens{how}, more than the {self.available_tokens} "
                "this server's LLM has for it (VOXGATE_LLM_CONTEXT_TOKENS less the reply and the "
                "conversation); shorten it",
            )
        return PromptRefusal(
            "tools",
            f"the system prompt and tools take {total} tokens{how}, more than the {self.available_tokens} "
            "this server's LLM has for them (VOXGATE_LLM_CONTEXT_TOKENS less the reply and the "
            "conversation); use fewer or shorter tools",
        )
