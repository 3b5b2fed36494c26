"""The embedded LLM: llama.cpp (llama-cpp-python) with the packaged Qwen2.5-Coder-0.5B-Instruct Q4_K_M.

- The prompt is rendered with the GGUF's own Jinja chat template (tools included), so tool results and
  assistant tool calls are shown to the model exactly as it was trained on them.
- Generation runs in a one-thread :class:`InferenceExecutor`; each piece of text is handed to the event
  loop with ``call_soon_threadsafe`` as it is decoded, and closing the async iterator sets a stop flag
  that the generation loop checks after every token.
- Speak or call: with tools, the reply's action is decided first by constrained decoding and a call's
  arguments are written under its JSON-schema grammar (:mod:`voxgate.speech.reply_grammar`); speech
  cannot contain tool syntax. :class:`ToolCallStreamParser` reads the call; its arguments are checked
  against the schema (:mod:`voxgate.speech.tool_arguments`) and the caller's words (:func:`is_grounded`).
- Instructions: the trailing system message (``reply.create`` instructions, a tool's
  ``response_instructions``) is what the model reads last; one that dictates the words ("Say exactly:
  …") is spoken as given, one that names a tool to call makes it the action
  (:mod:`voxgate.speech.instruction_directives`).
- Anticipation: when the user pauses, the session may ask for the reply to what they said so far
  (:meth:`LlamaLLM.anticipate`). Its first tokens are generated while turn-taking is still deciding
  whether the turn has ended; a :meth:`LlamaLLM.stream` for exactly that prompt then starts with them
  and goes on from there, and any other request makes the anticipation stop after its current token.
- Prompt caching per session (``session_key``): :mod:`voxgate.speech.llama_prompt_cache`; the session
  releases its cache when it ends (:meth:`LlamaLLM.forget_session`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxgate.config import Settings
from voxgate.speech.base import (
    ChatMessage,
    LanguageModelError,
    LLMEvent,
    TextDelta,
    ToolCallRequest,
    ToolSchema,
)
from voxgate.speech.executor import FOREGROUND, InferenceExecutor
from voxgate.speech.instruction_directives import instructed_tool, verbatim_reply
from voxgate.speech.llama_prompt_cache import LlamaPromptCache
from voxgate.speech.models import resolve_model
from voxgate.speech.prompt_budget import DEFAULT_REPLY_TOKENS
from voxgate.speech.reply_grammar import (
    SPEAK,
    SPEECH_OPENING,
    ArgumentGrammars,
    action_options,
    choose_action,
    tool_call_prefix,
    tool_call_text,
    with_reply_format,
)
from voxgate.speech.tool_arguments import argument_errors
from voxgate.speech.tool_call_parsing import ToolCallStreamParser, caller_context, is_grounded

if TYPE_CHECKING:
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

MODEL_NAME = "qwen2.5-0.5b-instruct-q4km"
FOREGROUND_MAX_WAIT_SECONDS = 0.3
GENERATION_TIME_BUDGET_SECONDS = 45.0
"""A generation still running this long after it started is abandoned with a LanguageModelError (a failed
reply), so one request cannot hold the shared inference thread for minutes. The prompt itself is bounded
in tokens (``_prompt_tokens``); this bounds what the time per token makes of it."""
"""Longest pause between two tokens while speech is being synthesised (``executor.ForegroundWork``)."""

_CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""Used only when a user-supplied GGUF carries no chat template."""

AFTER_TOOL_RESULT_HINT = (
    "Answer the caller now in one or two short spoken sentences, using the tool result above. "
    "Do not call a tool and do not repeat the raw result."
)
"""Appended (as a system turn) after tool results: without it the 0.5B model echoes the result JSON."""


@dataclass(slots=True)
class _Anticipation:
    """The start of a reply generated ahead of its request (worker thread only)."""

    session_key: str | None
    prompt: list[int]
    pieces: list[str]
    tokens: int
    finished: bool
    """The model ended its reply (not merely the anticipation's token budget)."""
    action: str | None = None
    """What the reply decided to do (``speak`` or a tool's name); ``None`` without a decision."""


@dataclass(slots=True)
class _CompletionRun:
    produced: int = 0
    first_at: float | None = None
    stopped: bool = False
    finished: bool = False
    action: str | None = None
    """``speak`` or the tool called, when the reply decided its action (:meth:`LlamaLLM._reply`)."""


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What the last generation did (also logged at debug level)."""

    prompt_tokens: int
    reused_prefix_tokens: int
    completion_tokens: int
    prefill_seconds: float
    total_seconds: float
    stopped_early: bool
    anticipated_tokens: int = 0
    """Tokens of the reply that :meth:`LlamaLLM.anticipate` had generated before it was asked for."""


class ChatPromptRenderer:
    """Renders :class:`ChatMessage` lists with a model's Jinja chat template."""

    def __init__(self, template: str, *, bos_token: str = "", eos_token: str = "") -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        # Hugging Face templates expect tojson without HTML escaping (jinja's default escapes < > &)
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_template_error
        self._template = environment.from_string(template)
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        add_generation_prompt: bool = True,
    ) -> str:
        return self._template.render(
            messages=[message_to_template(message) for message in messages],
            tools=[tool.as_openai_tool() for tool in tools] or None,
            add_generation_prompt=add_generation_prompt,
            bos_token=self._bos_token,
            eos_token=self._eos_token,
        )


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def _raise_template_error(message: str) -> None:
    raise LanguageModelError(f"chat template error: {message}")


def message_to_template(message: ChatMessage) -> dict[str, Any]:
    """A message in the OpenAI-style dict shape that Hugging Face chat templates expect."""
    rendered: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        rendered["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        rendered["tool_call_id"] = message.tool_call_id
    return rendered


class LlamaLLM:
    """:class:`~voxgate.speech.base.LanguageModel` backed by llama.cpp; one instance serves every session."""

    def __init__(
        self,
        settings: Settings,
        *,
        temperature: float = 0.2,
        max_tokens: int = DEFAULT_REPLY_TOKENS,
        seed: int = 1234,
        max_cached_sessions: int = 8,
        anticipate_tokens: int = 16,
        require_grounded_calls: bool = True,
        decide_actions: bool = True,
    ) -> None:
        from llama_cpp import Llama  # heavy: only when the embedded LLM is chosen

        path = resolve_model(MODEL_NAME, settings)
        self.model_path = path
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.anticipate_tokens = anticipate_tokens
        """How far :meth:`anticipate` generates: about one spoken clause, so a turn that goes on after
        all wastes at most this much of the model's time."""
        self.require_grounded_calls = require_grounded_calls
        self.decide_actions = decide_actions
        """Decide speak-or-call by constrained decoding (:mod:`voxgate.speech.reply_grammar`); off: the
        model writes calls freely in the chat template's convention (compared in bench/llm_quality.py)."""
        try:
            self._llama: Llama = Llama(
                model_path=str(path),
                n_ctx=settings.llm_context_tokens,
                n_threads=settings.llm_threads,
                n_threads_batch=settings.llm_threads,
                n_batch=512,
                seed=seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a bad file as a ValueError
            raise LanguageModelError(f"cannot load the LLM from {path}: {exc}") from exc
        template = self._llama.metadata.get("tokenizer.chat_template") or _CHATML_TEMPLATE
        self.renderer = ChatPromptRenderer(template)
        self.context_tokens = self._llama.n_ctx()
        self._executor = InferenceExecutor("llm", threads=1)
        self.prompt_cache = LlamaPromptCache(self._llama, max_sessions=max_cached_sessions)
        self._anticipation: _Anticipation | None = None
        self._requests = 0
        """Requests submitted to the worker (counted on the event loop): an anticipation stops after its
        current token once a later request has been submitted."""
        self.last_stats: GenerationStats | None = None
        self.recent_stats: deque[GenerationStats] = deque(maxlen=64)
        """Every generation, oldest first (a reply whose tool call was rejected has two)."""
        self._tool_start_tokens: Any = None
        self._argument_grammars = ArgumentGrammars()
        self._action_options: dict[tuple[str, ...], dict[str, list[int]]] = {}

    @property
    def executor(self) -> InferenceExecutor:
        return self._executor

    # --- public API ---------------------------------------------------------------------------
    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Stream the reply to ``messages``: text deltas as they are decoded, then any tool calls.

        A tool call the small model writes but that cannot stand (unparseable, an unknown tool, or
        arguments with no support in what the caller said; see :func:`is_grounded`) is not passed on:
        the model is asked again, this time unable to write a tool call, so the caller hears words.
        """
        messages = list(messages)
        tools = list(tools)
        dictated = verbatim_reply(messages)
        if dictated is not None:
            yield TextDelta(dictated)
            return
        speak_only = bool(tools) and answers_tool_result(messages)
        parser = ToolCallStreamParser([tool.name for tool in tools]) if tools else None
        spoke = False
        async for piece in self._pieces(messages, tools, session_key, speak_only=speak_only):
            for event in parser.feed(piece) if parser else [TextDelta(piece)]:
                spoke = True
                yield event
        if parser is None:
            return
        final = parser.finish()
        schemas = {tool.name: tool for tool in tools}
        context = caller_context(messages)
        calls = [e for e in final if isinstance(e, ToolCallRequest)]
        accepted = [c for c in calls if self._acceptable(c, schemas[c.name], context)]
        for event in final:
            if isinstance(event, TextDelta) or event in accepted:
                spoke = spoke or isinstance(event, TextDelta)
                yield event
        if parser.in_tool_call and not accepted and not spoke:
            logger.info("LLM tool call rejected (%s); answering in words instead", calls or "unparseable")
            async for piece in self._pieces(messages, tools, session_key, speak_only=True):
                yield TextDelta(piece)

    def _acceptable(self, call: ToolCallRequest, schema: ToolSchema, context: set[str]) -> bool:
        errors = argument_errors(call.arguments, schema.parameters)
        if errors:
            logger.info("LLM tool call %s has arguments its schema refuses: %s", call.name, "; ".join(errors))
            return False
        return not self.require_grounded_calls or is_grounded(call, schema, context)

    async def _pieces(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSchema],
        session_key: str | None,
        *,
        speak_only: bool,
    ) -> AsyncIterator[str]:
        """Raw decoded text from one generation, bridged from the executor thread."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        self._requests += 1
        job = asyncio.ensure_future(
            self._executor.run(self._generate, messages, tools, session_key, speak_only, stop, emit)
        )
        job.add_done_callback(lambda _job: queue.put_nowait(_END))
        try:
            while (item := await queue.get()) is not _END:
                assert isinstance(item, str)
                yield item
            job.result()  # re-raise a failure of the generation loop
        finally:
            stop.set()
            if not job.done():
                job.cancel()

    async def warm(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> None:
        """Prefill the prompt prefix of ``messages`` (e.g. just the system prompt) for ``session_key``
        so the session's first reply does not pay the cold prefill (~3 s with tools on 2 cores)."""
        self._requests += 1
        await self._executor.run(self._warm, list(messages), list(tools), session_key)

    async def anticipate(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        session_key: str | None = None,
    ) -> int:
        """Start the reply to ``messages`` before it is asked for (the user has paused; the turn may end).

        Generates up to :attr:`anticipate_tokens` tokens and keeps them: a later :meth:`stream` of
        exactly these messages for the same session yields them at once and continues. Any other request
        (or a newer anticipation) stops it after its current token; a prompt that does not match
        discards it and reuses the KV cache's common prefix as usual. Returns the tokens generated."""
        self._requests += 1
        ticket = self._requests
        return await self._executor.run(
            self._anticipate, list(messages), list(tools), session_key, lambda: self._requests != ticket
        )

    def forget_session(self, session_key: str) -> None:
        """Drop an ended session's saved prompt cache."""
        self.prompt_cache.forget(session_key)

    @property
    def busy(self) -> bool:
        """The model is working (a prefill should not queue behind it)."""
        return self._executor.busy

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self.prompt_cache.clear()

    def count_prompt_tokens(self, system_prompt: str, tools: Sequence[ToolSchema]) -> int:
        """Tokens the system prompt and tools take in a prompt (chat template included), without
        evaluating anything (speech.prompt_budget). Tokenizing only reads the vocabulary, so any thread
        may call it."""
        prompt = self.renderer.render(
            [ChatMessage("system", system_prompt)], tools, add_generation_prompt=False
        )
        return len(self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    # --- worker-thread side -------------------------------------------------------------------
    def _prompt_tokens(self, messages: list[ChatMessage], tools: list[ToolSchema]) -> list[int]:
        """Tokenised prompt, dropping the oldest turns (never the system prompt) to fit the context."""
        while True:
            prompt = self.renderer.render(messages, tools)
            tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) <= self._prompt_budget:
                return tokens
            trimmed = _drop_oldest_turn(messages)
            if trimmed is None:
                raise self._too_long(len(tokens))
            messages = trimmed

    @property
    def _prompt_budget(self) -> int:
        """The most tokens a prompt may have: the context less the reply budget (also caps a prefill)."""
        return self.context_tokens - self.max_tokens

    def _too_long(self, tokens: int) -> LanguageModelError:
        return LanguageModelError(
            f"the prompt needs {tokens} tokens but only {self._prompt_budget} fit in the context "
            f"(VOXGATE_LLM_CONTEXT_TOKENS={self.context_tokens}); shorten the system prompt or tools"
        )

    def _prompt_for(self, messages: list[ChatMessage], tools: list[ToolSchema]) -> list[int]:
        return self._prompt_tokens(self._prompt_messages(messages, tools), tools)

    def _prompt_messages(self, messages: list[ChatMessage], tools: list[ToolSchema]) -> list[ChatMessage]:
        """The messages as the model sees them: the reply format in the system prompt (with tools and
        :attr:`decide_actions`), and after a tool result one system message with the hint to answer it
        in words followed by the instructions that came with the result (read last)."""
        if tools and self.decide_actions:
            messages = with_reply_format(messages)
        if tools and answers_tool_result(messages):  # the small model must answer the result in words
            last_tool = max(i for i, message in enumerate(messages) if message.role == "tool")
            instructions = [message.content for message in messages[last_tool + 1 :]]
            hint = ChatMessage("system", " ".join([AFTER_TOOL_RESULT_HINT, *instructions]))
            messages = [*messages[: last_tool + 1], hint]
        return messages

    def _reply(
        self,
        tokens: list[int],
        tools: list[ToolSchema],
        max_tokens: int,
        speak_only: bool,
        stop: Callable[[], bool],
        emit: Callable[[str], None],
        instructed: str | None = None,
    ) -> _CompletionRun:
        """Generate a reply after ``tokens``: with tools, decide its action first (speech or a call);
        ``instructed``: the tool an instruction named (the action without asking the model)."""
        if tools and self.decide_actions:
            if not speak_only:
                action = instructed or self._choose_action(tokens, tools)
                tool = next((t for t in tools if t.name == action), None)
                if tool is not None:
                    run = self._write_tool_call(tokens, tool, stop, emit)
                    run.action = tool.name
                    return run
            tokens = tokens + self._speech_opening()
            speak_only = True  # speaking: nothing it says may be tool syntax
            run = self._complete(tokens, max_tokens, speak_only, stop, emit)
            run.action = SPEAK
            return run
        return self._complete(tokens, max_tokens, speak_only, stop, emit)

    def _speech_opening(self) -> list[int]:
        return self._llama.tokenize(SPEECH_OPENING.encode("utf-8"), add_bos=False, special=False)

    def _choose_action(self, tokens: list[int], tools: list[ToolSchema]) -> str:
        key = tuple(tool.name for tool in tools)
        options = self._action_options.get(key)
        if options is None:
            options = action_options(
                tools, lambda text: self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            )
            if len(self._action_options) >= 64:
                self._action_options.clear()
            self._action_options[key] = options
        action = choose_action(tokens, options, self.prompt_cache.next_token_logits)
        logger.debug("reply action: %s", action)
        return action

    def _write_tool_call(
        self, tokens: list[int], tool: ToolSchema, stop: Callable[[], bool], emit: Callable[[str], None]
    ) -> _CompletionRun:
        """The call's arguments, decoded greedily under the tool's JSON-schema grammar, emitted at once as
        one native ``<tool_call>`` block."""
        from llama_cpp import LlamaGrammar

        run = _CompletionRun()
        opening = tool_call_prefix(tool.name).encode("utf-8")
        prefix = self._llama.tokenize(opening, add_bos=False, special=True)
        grammar = LlamaGrammar.from_string(self._argument_grammars.gbnf(tool.parameters), verbose=False)
        completion = self._llama.create_completion(
            prompt=tokens + prefix,
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=self.seed,
            stream=True,
            grammar=grammar,
        )
        pieces: list[str] = []
        try:
            for chunk in completion:
                if stop():
                    run.stopped = True
                    return run
                choice = chunk["choices"][0]  # type: ignore[index]
                run.produced += 1
                run.first_at = run.first_at or time.perf_counter()
                pieces.append(choice["text"])
        finally:
            completion.close()  # type: ignore[union-attr]
        run.finished = True
        emit(tool_call_text(tool.name, "".join(pieces)))
        return run

    def _complete(
        self,
        prompt: list[int],
        max_tokens: int,
        speak_only: bool,
        stop: Callable[[], bool],
        emit: Callable[[str], None],
    ) -> _CompletionRun:
        """Sample up to ``max_tokens`` after ``prompt``, handing each piece of text to ``emit``."""
        run = _CompletionRun()
        completion = self._llama.create_completion(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=0.9,
            repeat_penalty=1.05,
            seed=self.seed,
            stream=True,
            logits_processor=self._speak_only_processor() if speak_only else None,
        )
        try:
            for chunk in completion:
                if stop():
                    run.stopped = True
                    break
                choice = chunk["choices"][0]  # type: ignore[index]
                run.produced += 1
                run.first_at = run.first_at or time.perf_counter()
                if choice["text"]:
                    emit(choice["text"])
                if choice.get("finish_reason") == "stop":
                    run.finished = True
                else:
                    FOREGROUND.yield_to(FOREGROUND_MAX_WAIT_SECONDS)  # speech being synthesised goes first
        finally:
            completion.close()  # type: ignore[union-attr]
        return run

    def _generate(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSchema],
        session_key: str | None,
        speak_only: bool,
        stop: threading.Event,
        emit: Callable[[str], None],
    ) -> GenerationStats:
        started = time.perf_counter()
        if stop.is_set():
            raise asyncio.CancelledError
        try:
            tokens = self._prompt_for(messages, tools)
            self.prompt_cache.switch(session_key, tokens)
            reused = self.prompt_cache.reused_prefix(tokens)
            anticipated = self._anticipation
            self._anticipation = None
            run = _CompletionRun()
            prompt, budget, anticipated_tokens = tokens, self.max_tokens, 0
            matching = (
                anticipated is not None
                and not speak_only
                and anticipated.session_key == session_key
                and anticipated.prompt == tokens
            )
            # A call cut short by the anticipation's stop is written again (its decision is kept); speech
            # goes on from where the anticipation stopped.
            instructed = instructed_tool(messages, tools)
            resumed = False
            if matching:
                assert anticipated is not None
                resumed = anticipated.finished or anticipated.action in (None, SPEAK)
                instructed = instructed if resumed else anticipated.action
            if resumed:
                assert anticipated is not None
                for piece in anticipated.pieces:
                    run.first_at = run.first_at or time.perf_counter()
                    emit(piece)
                text = "".join(anticipated.pieces)
                opening = self._speech_opening() if tools and self.decide_actions else []
                spoken = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
                prompt = tokens + opening + spoken
                budget = self.max_tokens - anticipated.tokens
                run.produced, run.finished = anticipated.tokens, anticipated.finished
                anticipated_tokens = anticipated.tokens
            if not run.finished and budget > 0:
                deadline = started + GENERATION_TIME_BUDGET_SECONDS

                def stop_now() -> bool:
                    return stop.is_set() or time.perf_counter() > deadline

                if resumed:  # the anticipation decided to speak (a call is always finished)
                    speaking = bool(tools) and self.decide_actions
                    rest = self._complete(prompt, budget, speaking, stop_now, emit)
                else:
                    rest = self._reply(prompt, tools, budget, speak_only, stop_now, emit, instructed)
                run.produced += rest.produced
                run.first_at = run.first_at or rest.first_at
                run.stopped = rest.stopped
                if rest.stopped and not stop.is_set():
                    raise LanguageModelError(
                        f"the reply took longer than {GENERATION_TIME_BUDGET_SECONDS:g} s and was abandoned"
                    )
        except LanguageModelError:
            raise
        except Exception as exc:
            raise LanguageModelError(f"embedded LLM failed: {exc}") from exc
        now = time.perf_counter()
        stats = GenerationStats(
            prompt_tokens=len(tokens),
            reused_prefix_tokens=reused,
            completion_tokens=run.produced,
            prefill_seconds=(run.first_at or now) - started,
            total_seconds=now - started,
            stopped_early=run.stopped,
            anticipated_tokens=anticipated_tokens,
        )
        self.last_stats = stats
        self.recent_stats.append(stats)
        logger.debug("llm generation %s", stats)
        return stats

    def _anticipate(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSchema],
        session_key: str | None,
        superseded: Callable[[], bool],
    ) -> int:
        self._anticipation = None
        if superseded():
            return 0
        tokens = self._prompt_for(messages, tools)
        self.prompt_cache.switch(session_key, tokens)
        pieces: list[str] = []
        instructed = instructed_tool(messages, tools)
        run = self._reply(tokens, tools, self.anticipate_tokens, False, superseded, pieces.append, instructed)
        self._anticipation = _Anticipation(
            session_key, tokens, pieces, run.produced, run.finished, run.action
        )
        return run.produced

    def _speak_only_processor(self) -> Any:
        """A logits processor that forbids writing a tool call or code (any token with ``{`` or a backtick,
        and ``<tool_call>``).

        Used for the reply to a tool result (with :data:`AFTER_TOOL_RESULT_HINT`): the 0.5B model
        tends to repeat the call or echo the result there instead of answering, so after a tool
        result it must speak. Chained tool calls are therefore not available with the embedded model.
        """
        import numpy as np
        from llama_cpp import LogitsProcessorList

        if self._tool_start_tokens is None:
            llama = self._llama
            self._tool_start_tokens = np.array(
                [
                    token
                    for token in range(llama.n_vocab())
                    if b"{" in (piece := llama.detokenize([token], special=True))
                    or b"`" in piece
                    or b"<tool" in piece
                    or b"<" == piece.strip()
                ],
                dtype=np.intc,
            )
        banned = self._tool_start_tokens

        def ban(_input_ids: Any, scores: Any) -> Any:
            scores[banned] = -np.inf
            return scores

        return LogitsProcessorList([ban])

    def _warm(self, messages: list[ChatMessage], tools: list[ToolSchema], session_key: str | None) -> None:
        messages = self._prompt_messages(messages, tools)
        prompt = self.renderer.render(messages, tools, add_generation_prompt=False)
        tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) > self._prompt_budget:  # never prefill what no reply could use
            raise self._too_long(len(tokens))
        self.prompt_cache.switch(session_key, tokens)
        self.prompt_cache.prefill(tokens)


_END = object()


def answers_tool_result(messages: Sequence[ChatMessage]) -> bool:
    """The reply answers a tool result: the last message that is not an instruction is one."""
    for message in reversed(messages):
        if message.role != "system":
            return message.role == "tool"
    return False


def _drop_oldest_turn(messages: list[ChatMessage]) -> list[ChatMessage] | None:
    """Remove the oldest non-system message (and tool results left without their call). ``None`` when
    only the system prompt and the last message are left."""
    start = 1 if messages and messages[0].role == "system" else 0
    if len(messages) - start <= 1:
        return None
    rest = messages[start + 1 :]
    while len(rest) > 1 and rest[0].role == "tool":
        rest = rest[1:]
    return messages[:start] + rest
