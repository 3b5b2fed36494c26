"""A REST client written against HOSTED.md's shapes, the way a generated SDK reads them: strict pydantic
models (``extra="forbid"`` where the hosted schema is closed, required fields required). Agent records
allow extra keys, since unknown fields are returned as sent (HOSTED.md's rule for unknown input)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(Closed):
    message: str
    param: str | None


class ErrorEnvelope(Closed):
    code: str
    message: str
    param: str | None
    request_id: str
    errors: list[ErrorItem] | None
    detail: Any


class HeaderRead(Closed):
    name: str
    last_set_at: str


class HttpRead(Open):
    url: str
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    headers: list[HeaderRead]


class ResponseInstructions(Closed):
    success: str | None
    error: str | None


class DtmfArgument(Closed):
    parameter_name: str
    prompt: str
    min_digits: int
    max_digits: int
    terminator: str | None
    timeout_seconds: float | None
    confirm: bool | None
    sensitive: bool | None
    escalate_hotkey_disabled: bool | None


class ToolRead(Open):
    id: str
    type: Literal["function"]
    name: str
    description: str
    parameters: dict[str, Any]
    execution_mode: Literal["interactive", "hold"]
    timeout_seconds: float
    response_instructions: ResponseInstructions | None
    dtmf_collected_arguments: list[DtmfArgument]
    http: HttpRead | None = None


class PreConnectReturn(Closed):
    name: str
    path: str
    default: Any


class PreConnectRead(Closed):
    http: HttpRead
    sends: list[str]
    returns: list[PreConnectReturn]
    timeout_ms: int | None
    allow_overrides: list[str]


class TransferTarget(Closed):
    name: str
    kind: Literal["human", "agent"]
    phone_number: str | None
    agent_id: str | None
    mode: Literal["cold", "warm"]
    consult_instructions: str | None
    ring_timeout_seconds: int | None
    consult_timeout_seconds: int | None
    record_consult: bool | None


class LlmRead(Closed):
    base_url: str
    model: str


class Voice(Closed):
    voice_id: str


class Agent(Open):
    id: str
    name: str
    system_prompt: str
    greeting: str | None
    voice: Voice
    input: dict[str, Any]
    output: dict[str, Any]
    tools: list[ToolRead]
    pre_connect_requests: list[PreConnectRead]
    transfer_targets: list[TransferTarget]
    caller_id: str | None
    outbound_trunk_id: str | None
    llm: list[LlmRead]
    created_at: str
    updated_at: str


class ResponseMetadata(Closed):
    next_cursor: str


class AgentPage(Closed):
    agents: list[Agent]
    has_more: bool
    response_metadata: ResponseMetadata


class CreatedToken(Closed):
    token: str
    expires_at: str


class HostedApiError(Exception):
    def __init__(self, status: int, error: ErrorEnvelope, request_id_header: str | None) -> None:
        super().__init__(f"{status} {error.code}: {error.message}")
        self.status = status
        self.error = error
        self.request_id_header = request_id_header


class HostedClient:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def create_agent(self, body: dict[str, Any]) -> Agent:
        return Agent.model_validate(self._call("POST", "/v1/agents", json=body, expect=201))

    def get_agent(self, agent_id: str) -> Agent:
        return Agent.model_validate(self._call("GET", f"/v1/agents/{agent_id}"))

    def update_agent(self, agent_id: str, body: dict[str, Any]) -> Agent:
        return Agent.model_validate(self._call("PUT", f"/v1/agents/{agent_id}", json=body))

    def delete_agent(self, agent_id: str) -> None:
        self._call("DELETE", f"/v1/agents/{agent_id}", expect=204)

    def list_agents(self, *, limit: int | None = None, cursor: str | None = None) -> AgentPage:
        params: dict[str, Any] = {}
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        return AgentPage.model_validate(self._call("GET", "/v1/agents", params=params))

    def iterate_agents(self, *, limit: int) -> list[Agent]:
        """Every agent, following ``next_cursor`` until it is empty (as an SDK's auto-pager does)."""
        agents: list[Agent] = []
        cursor: str | None = None
        while True:
            page = self.list_agents(limit=limit, cursor=cursor)
            agents.extend(page.agents)
            if not page.response_metadata.next_cursor:
                assert not page.has_more
                return agents
            assert page.has_more and len(page.agents) == limit
            cursor = page.response_metadata.next_cursor

    def create_token(self, body: dict[str, Any] | None = None) -> CreatedToken:
        return CreatedToken.model_validate(self._call("POST", "/v1/tokens", json=body or {}))

    def _call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code != expect:
            error = ErrorEnvelope.model_validate(response.json())
            raise HostedApiError(response.status_code, error, response.headers.get("x-request-id"))
        return None if response.status_code == 204 else response.json()
