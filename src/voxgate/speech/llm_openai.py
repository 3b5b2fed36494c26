"""Remote LLM: any OpenAI-compatible chat-completions server (OpenAI, vLLM, ollama, llama.cpp's servers).

Streams text deltas; tool calls arrive either as standard ``tool_calls`` deltas (accumulated by index)
or, from servers such as ``llama_cpp.server`` that leave the model's own format alone, as JSON in
``content`` (parsed by :class:`ToolCallStreamParser`). Timeouts, connection failures and HTTP errors
raise :class:`LanguageModelError`, whose message never quotes the remote server's answer (it can reach the
client): the server's error text is logged instead.

A bring-your-own endpoint (:meth:`OpenAILLM.for_endpoint` with a policy) connects through the shared
outbound policy (:mod:`voxgate.outbound.policy`): https, public addresses checked at connect time and
pinned, no redirects, a bounded response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from voxgate.config import Settings
from voxgate.outbound.policy import DestinationRefused, OutboundPolicy, ResponseTooLarge, outbound_client
from voxgate.speech.base import (
    ChatMessage,
    LanguageModelError,
    LLMEvent,
    TextDelta,
    ToolCallRequest,
    ToolSchema,
)
from voxgate.speech.tool_call_parsing import ToolCallStreamParser, coerce_arguments, new_call_id

logger = logging.getLogger(__name__)

_NO_KEY = "not-needed"  # local servers ignore the key, but the client insists on one
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""Largest streamed answer read from a bring-your-own endpoint (a reply is a few KiB)."""


@dataclass(slots=True)
class _PartialToolCall:
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def message_to_openai(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    rendered: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        rendered["content"] = message.content or None
        rendered["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return rendered


class OpenAILLM:
    """:class:`~voxgate.speech.base.LanguageModel` over an OpenAI-compatible ``/chat/completions``."""

    streaming = True
    supports_tools = True

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 30.0,
        temperature: float = 0.3,
        max_tokens: int = 300,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url or (settings.openai_base_url if settings else None)
        self.model = model or (settings.openai_llm_model if settings else None)
        if not self.model:
            raise ValueError("OpenAILLM needs a model name (VOXGATE_OPENAI_LLM_MODEL)")
        key = api_key or (settings.openai_api_key if settings else None) or _NO_KEY
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=key,
            timeout=timeout_seconds,
            max_retries=0,
            http_client=http_client,
        )

    @classmethod
    def for_endpoint(
        cls,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_seconds: float = 30.0,
        policy: OutboundPolicy | None = None,
    ) -> OpenAILLM:
        """The provider for an agent's bring-your-own ``llm`` entry (``{base_url, model, api_key}``).
        The server always passes its outbound ``policy``; without one the endpoint is trusted as it is."""
        client = None
        if policy is not None:
            client = outbound_client(policy, max_response_bytes=MAX_RESPONSE_BYTES, timeout=timeout_seconds)
        return cls(
            base_url=base_url,
            model=model,
            api_key=api_key,
            timeout_seconds=timeout_seconds,
            http_client=client,
        )

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [message_to_openai(message) for message in messages],
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if tools:
            request["tools"] = [tool.as_openai_tool() for tool in tools]
        tool_names = [tool.name for tool in tools]
        parser = ToolCallStreamParser(tool_names) if tools else None
        partial_calls: dict[int, _PartialToolCall] = {}
        try:
            response = await self._client.chat.completions.create(**request)
            async with response:
                async for chunk in response:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta is None:
                        continue
                    if delta.content:
                        for event in parser.feed(delta.content) if parser else [TextDelta(delta.content)]:
                            yield event
                    for tool_delta in delta.tool_calls or ():
                        partial = partial_calls.setdefault(tool_delta.index, _PartialToolCall())
                        partial.call_id = partial.call_id or tool_delta.id
                        if tool_delta.function is not None:
                            partial.name += tool_delta.function.name or ""
                            partial.arguments.append(tool_delta.function.arguments or "")
        except DestinationRefused as exc:
            raise LanguageModelError(f"the LLM at {self._client.base_url} may not be called: {exc}") from exc
        except ResponseTooLarge as exc:
            raise LanguageModelError(f"the LLM at {self._client.base_url} sent too much: {exc}") from exc
        except openai.APITimeoutError as exc:
            raise LanguageModelError(f"LLM at {self._client.base_url} timed out") from exc
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, DestinationRefused):
                raise LanguageModelError(
                    f"the LLM at {self._client.base_url} may not be called: {exc.__cause__}"
                ) from exc
            raise LanguageModelError(f"cannot reach the LLM at {self._client.base_url}: {exc}") from exc
        except openai.APIStatusError as exc:
            logger.warning(
                "LLM at %s answered HTTP %s: %s", self._client.base_url, exc.status_code, _error_detail(exc)
            )
            raise LanguageModelError(
                f"LLM at {self._client.base_url} answered HTTP {exc.status_code}"
            ) from exc
        except openai.OpenAIError as exc:
            logger.warning("LLM request to %s failed: %s", self._client.base_url, exc)
            raise LanguageModelError(f"LLM request to {self._client.base_url} failed") from exc
        for event in parser.finish() if parser else []:
            yield event
        for index in sorted(partial_calls):
            call = _finish_tool_call(partial_calls[index], tool_names)
            if call is not None:
                yield call

    async def aclose(self) -> None:
        await self._client.close()


def _finish_tool_call(partial: _PartialToolCall, tool_names: Sequence[str]) -> ToolCallRequest | None:
    arguments = coerce_arguments("".join(partial.arguments))
    if not partial.name or arguments is None:
        logger.warning("LLM sent a malformed tool call %r; dropped", partial)
        return None
    if tool_names and partial.name not in tool_names:
        logger.warning("LLM called unknown tool %r; dropped", partial.name)
        return None
    return ToolCallRequest(call_id=partial.call_id or new_call_id(), name=partial.name, arguments=arguments)


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:300]
        return json.dumps(body)[:300]
    return str(exc.message)[:300]
