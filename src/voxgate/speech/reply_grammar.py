"""Speak or call a tool: how the embedded model's reply is decided by constrained decoding.

A small model left to the chat template's own tool convention sometimes *says* the call ("You can call
the ``lookup_order`` function with ...") instead of making it. So with tools the reply is decided first,
and only then written:

1. **The action.** After the prompt comes a forced ``{"action": "``; the next tokens may only spell
   ``speak`` or one of the tools' names (:func:`choose_action` walks the options' tokens greedily on
   the model's logits, so an option costs one forward pass per token where the names still differ). The
   system prompt explains the format (:data:`REPLY_FORMAT`, part of the cached prefix).
2. **Speech** continues unconstrained on the same cache after ``{"action": "speak"}`` and a new line
   (:data:`SPEECH_OPENING`), with tool syntax banned, so nothing spoken can be a call.
3. **A call** continues in the model's native form, ``<tool_call>\\n{"name": "X", "arguments": `` and
   its arguments under a grammar made from that tool's JSON Schema (:class:`ArgumentGrammars`); the
   provider hands the whole block to :class:`~voxgate.speech.tool_call_parsing.ToolCallStreamParser`
   and checks the arguments again with :mod:`voxgate.speech.tool_arguments`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from voxgate.speech.base import ChatMessage, ToolSchema

logger = logging.getLogger(__name__)

SPEAK = "speak"
ACTION_PREFIX = '{"action": "'
REPLY_FORMAT = (
    "# Reply format\n"
    "Start every reply with a JSON action:\n"
    '- {"action": "<function name>"}: you call that function. Use it when the caller asks for what a '
    "function does, or when an instruction tells you to call it; read each function description.\n"
    '- {"action": "speak"}, then a new line and what you say to the caller: for greetings, small '
    "talk, thanks, goodbyes, questions about yourself, and whenever no function fits."
)
"""Appended to the system prompt when tools are offered (stable per session, so it stays cached)."""

GENERIC_OBJECT_GBNF = r"""
root   ::= "{" ws ( member ( "," ws member )* )? "}"
member ::= string ":" ws value ws
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array  ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""
"""Any JSON object: the arguments grammar of a tool whose schema the converter cannot express."""

_ROOT_RULE = re.compile(r"^root\s*::=", re.MULTILINE)


def with_reply_format(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with :data:`REPLY_FORMAT` at the end of the system prompt (a system prompt of its own
    when there is none)."""
    messages = list(messages)
    if messages and messages[0].role == "system":
        system = messages[0]
        content = f"{system.content}\n\n{REPLY_FORMAT}" if system.content else REPLY_FORMAT
        return [ChatMessage("system", content), *messages[1:]]
    return [ChatMessage("system", REPLY_FORMAT), *messages]


def action_options(tools: Sequence[ToolSchema], tokenize: Callable[[str], list[int]]) -> dict[str, list[int]]:
    """Each action (``speak`` first, then the tools) as the tokens that follow the prompt:
    ``{"action": "<name>"``."""
    names = [SPEAK, *(tool.name for tool in tools if tool.name != SPEAK)]
    return {name: tokenize(f'{ACTION_PREFIX}{name}"') for name in names}


def choose_action(
    prompt: Sequence[int],
    options: dict[str, list[int]],
    logits_after: Callable[[list[int]], Any],
) -> str:
    """The option whose tokens the model prefers, decided token by token where the options differ.

    ``logits_after(tokens)`` evaluates ``tokens`` and returns the next-token logits (indexable by token
    id). Shared leading tokens are forced; at each point where the remaining options differ, the option
    token with the highest logit wins and the others drop out."""
    candidates = dict(options)
    context = list(prompt)
    depth = 0
    while len(candidates) > 1:
        sequences = list(candidates.values())
        while all(depth < len(tokens) for tokens in sequences) and len({t[depth] for t in sequences}) == 1:
            context.append(sequences[0][depth])
            depth += 1
        ended = [name for name, tokens in candidates.items() if depth >= len(tokens)]
        if ended:  # one option is a prefix of another (as token sequences): the shorter one wins
            return ended[0]
        logits = logits_after(context)
        best = max({tokens[depth] for tokens in sequences}, key=lambda token: float(logits[token]))
        candidates = {name: tokens for name, tokens in candidates.items() if tokens[depth] == best}
        context.append(best)
        depth += 1
    return next(iter(candidates))


SPEECH_OPENING = f'{ACTION_PREFIX}{SPEAK}"}}\n'
"""What a spoken reply continues after (the model has committed to speaking; it does not restate the
format, which it tends to do from a bare assistant turn)."""


def tool_call_prefix(name: str) -> str:
    """How the model's native tool call opens, up to its arguments. It ends at the colon: the model's
    tokenizer writes the space and the brace as one token (`` {"``), which the grammar allows."""
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments":'


def tool_call_text(name: str, arguments_json: str) -> str:
    """A whole native tool call, as ``tool_call_parsing.ToolCallStreamParser`` reads it."""
    return f"{tool_call_prefix(name)} {arguments_json.strip()}}}\n</tool_call>"


class ArgumentGrammars:
    """GBNF grammars for tool arguments, one per distinct JSON Schema (kept; converting costs ~ms)."""

    def __init__(self, max_entries: int = 256) -> None:
        self._grammars: dict[str, str] = {}
        self.max_entries = max_entries

    def gbnf(self, schema: dict[str, Any]) -> str:
        key = json.dumps(schema or {}, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = arguments_gbnf(schema)
            if len(self._grammars) >= self.max_entries:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = grammar
        return grammar


def arguments_gbnf(schema: dict[str, Any]) -> str:
    """The grammar of a space and a JSON object valid under ``schema`` (llama.cpp's converter); of any
    JSON object when the schema is empty or the converter cannot express it."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = GENERIC_OBJECT_GBNF
    if schema and schema.get("properties"):
        object_schema = {"type": "object", **schema}
        try:
            grammar = json_schema_to_gbnf(json.dumps(object_schema))
        except Exception as exc:  # the converter raises bare Exceptions for what it cannot express
            logger.info("tool schema not expressible as a grammar (%s); arguments constrained to JSON", exc)
    renamed = _ROOT_RULE.sub("tool-arguments ::=", grammar)
    return f'root ::= " "? tool-arguments\n{renamed}'
