"""Keeping the LLM's prompt cache ahead of the conversation (for a :class:`PromptPrefilling` model).

The session prefills the system prompt, tools and conversation while the greeting plays or the user
answers, so a reply does not pay a cold prefill (about 3 s with tools for the embedded model); and the
user's words while they speak or pause (*speculative*: the reply's prompt then shares that prefix, and at
the pause the model may start its answer, ``anticipate``). Speculative prefills are best-effort: only
while no reply runs, never queued behind other work on the model (another session's reply would wait for
it), and a newer text replaces one not yet started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from voxgate.speech.base import ChatMessage, LanguageModel, PromptPrefilling, ToolSchema

logger = logging.getLogger(__name__)


class Prefiller:
    def __init__(
        self,
        llm: LanguageModel,
        session_key: str,
        tools: Callable[[], Sequence[ToolSchema]],
        replying: Callable[[], bool],
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
    ) -> None:
        self._llm = llm if isinstance(llm, PromptPrefilling) else None
        self._session_key = session_key
        self._tools = tools
        self._replying = replying
        self._spawn = spawn
        self._pending: tuple[list[ChatMessage], bool] | None = None
        self._task: asyncio.Task[Any] | None = None

    def prefill(self, messages: list[ChatMessage], *, speculative: bool, anticipate: bool) -> None:
        if self._llm is None:
            return
        if not speculative:
            self._spawn(self._prefill(messages, False), "llm-warm")
            return
        self._pending = (messages, anticipate)
        if self._task is None or self._task.done():
            self._task = self._spawn(self._run_pending(), "llm-prefill-user")

    def forget(self) -> None:
        if self._llm is not None:
            self._llm.forget_session(self._session_key)

    async def _run_pending(self) -> None:
        while (pending := self._pending) is not None:
            self._pending = None
            if self._replying() or (self._llm is not None and self._llm.busy):
                continue
            await self._prefill(*pending)

    async def _prefill(self, messages: list[ChatMessage], anticipate: bool) -> None:
        llm = self._llm
        if llm is None:
            return
        warm = llm.anticipate if anticipate else llm.warm
        try:
            await warm(messages, self._tools(), session_key=self._session_key)
        except Exception:
            logger.warning("prefilling the LLM prompt failed; the next reply will prefill", exc_info=True)
