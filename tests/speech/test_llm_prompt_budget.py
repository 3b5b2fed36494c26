"""The embedded LLM's prompt budget (issue #19): counted with the model's own tokenizer and chat template,
and never prefilled beyond what a reply could use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxgate.config import Settings
from voxgate.speech.base import ChatMessage, LanguageModelError, ToolSchema
from voxgate.speech.prompt_budget import CONVERSATION_RESERVE_TOKENS, PromptBudget, estimate_prompt_tokens

pytestmark = pytest.mark.models

PROMPT = "You are Ava, the friendly phone assistant of Luigi's Pizzeria. Answer in one short sentence."
TOOLS = [ToolSchema("get_weather", "Get the weather.", {"type": "object", "properties": {"city": {}}})]


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from voxgate.speech.llm_llama import LlamaLLM

    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("data")), model_cache_dir=Settings().effective_model_cache_dir
    )
    model = LlamaLLM(settings)
    yield model
    model.close()


def test_the_budget_counts_with_the_models_tokenizer_and_template(llm: object) -> None:
    from voxgate.speech.llm_llama import LlamaLLM

    assert isinstance(llm, LlamaLLM)
    budget = PromptBudget.for_llm(Settings(), llm)
    assert budget.counter is llm
    assert budget.available_tokens == llm.context_tokens - llm.max_tokens - CONVERSATION_RESERVE_TOKENS
    rendered = llm.renderer.render([ChatMessage("system", PROMPT)], TOOLS, add_generation_prompt=False)
    exact = len(llm._llama.tokenize(rendered.encode(), add_bos=False, special=True))
    assert budget.count(PROMPT, TOOLS) == exact
    assert budget.count(PROMPT, TOOLS) > budget.count(PROMPT, [])
    assert estimate_prompt_tokens(PROMPT, TOOLS) >= exact  # the estimate over-counts English


async def test_an_exact_count_over_the_budget_names_the_system_prompt(llm: object) -> None:
    budget = PromptBudget.for_llm(Settings(), llm)
    refusal = await budget.refusal(PROMPT * 200, TOOLS)
    assert refusal is not None and refusal.field == "system_prompt" and "(estimated)" not in refusal.message


async def test_a_prompt_over_the_context_is_refused_before_any_prefill(llm: object) -> None:
    from voxgate.speech.llm_llama import LlamaLLM

    assert isinstance(llm, LlamaLLM)
    huge = [ChatMessage("system", PROMPT * 1_000), ChatMessage("user", "Hello?")]
    started = time.perf_counter()
    with pytest.raises(LanguageModelError, match="fit in the context"):
        await llm.warm(huge, TOOLS, session_key="huge")
    with pytest.raises(LanguageModelError, match="fit in the context"):
        async for _ in llm.stream(huge, TOOLS, session_key="huge"):
            pass
    assert time.perf_counter() - started < 5  # tokenizing only: a prefill of the context takes far longer
    assert llm.prompt_cache.loaded_tokens() == []
