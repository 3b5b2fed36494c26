"""Agents on REST are held to the LLM's prompt budget (speech.prompt_budget): a system prompt or tools
that leave no room for a conversation are a 422 ``invalid_value`` naming ``system_prompt`` or ``tools``.

On create the request's fields are checked; on update the merged document, inside the store's
compare-and-swap (``AgentRepository.update(check=...)``), so the check sees exactly what is written.
Agents with a bring-your-own LLM are not checked (they do not use the server's LLM).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from voxgate.api.rest_errors import validation_failed
from voxgate.config import Settings
from voxgate.protocol.agents import AgentCreate
from voxgate.speech.prompt_budget import PromptBudget, tool_schemas
from voxgate.store import AgentDocumentError
from voxgate.store.agents import DocumentCheck

PROMPT_TOO_LONG = "prompt_too_long"


async def server_prompt_budget(request: Request) -> PromptBudget:
    """The budget of the server's LLM: counted with its tokenizer once the speech stack is loaded."""
    settings: Settings = request.app.state.settings
    loader = request.app.state.speech
    llm = (await loader.get()).llm if loader is not None and loader.loaded else None
    return PromptBudget.for_llm(settings, llm)


async def check_new_agent(request: Request, create: AgentCreate) -> None:
    if create.llm:
        return
    budget = await server_prompt_budget(request)
    refusal = await budget.refusal(create.system_prompt, tool_schemas(create.tools or []))
    if refusal is not None:
        raise validation_failed([(("body", refusal.field), refusal.message, PROMPT_TOO_LONG)])


async def updated_agent_check(request: Request) -> DocumentCheck:
    budget = await server_prompt_budget(request)

    async def check(document: dict[str, Any]) -> None:
        if document.get("llm"):
            return
        tools = tool_schemas(document.get("tools") or [])
        refusal = await budget.refusal(document["system_prompt"], tools)
        if refusal is not None:
            raise AgentDocumentError((refusal.field,), refusal.message, PROMPT_TOO_LONG)

    return check
