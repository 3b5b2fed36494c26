"""The session's tool set: what the LLM is offered and where each call runs.

A tool with an ``http`` block runs server-side (:mod:`voxgate.conversation.http_tools`), and so does a
built-in server tool listed by name (:mod:`voxgate.conversation.builtin_tools`); any other tool is a
client tool, executed by the WebSocket client through ``tool.call``/``tool.result``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voxgate.conversation.builtin_tools import offered_schema, server_builtin
from voxgate.conversation.ledger import tool_error_text
from voxgate.protocol.config import ToolSpec
from voxgate.speech.base import ToolSchema

TIMEOUT_MESSAGE = (
    "The tool did not answer within {seconds:g} seconds. Tell the user you could not get that "
    "information right now, and carry on."
)


def timeout_result(seconds: float) -> str:
    """The tool result the model gets when a client tool did not answer in time."""
    return tool_error_text(TIMEOUT_MESSAGE.format(seconds=seconds))


@dataclass(frozen=True, slots=True)
class ToolSet:
    specs: tuple[ToolSpec, ...] = ()

    @classmethod
    def of(cls, tools: Sequence[ToolSpec]) -> ToolSet:
        return cls(tuple(tools))

    def schemas(self) -> list[ToolSchema]:
        return [ToolSchema(t.name, *offered_schema(t)) for t in self.specs]

    def find(self, name: str) -> ToolSpec | None:
        for spec in self.specs:
            if spec.name == name:
                return spec
        return None


def runs_on_server(spec: ToolSpec) -> bool:
    """An HTTP tool, or a built-in tool the server runs: no ``tool.call`` goes to the client."""
    return spec.http is not None or server_builtin(spec) is not None


def http_headers(spec: ToolSpec) -> dict[str, str]:
    """The decrypted stored headers of an HTTP tool, as request headers."""
    if spec.http is None:
        return {}
    return {h.name: h.value for h in spec.http.headers if h.value is not None and not h.remove}
