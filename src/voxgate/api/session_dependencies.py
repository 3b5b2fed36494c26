"""What a Session needs on this server, for one connection: :func:`session_dependencies`, built once
from the app's shared state, the connection's project and its transport's :class:`TransportProfile`
(nothing is changed after it is built)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voxgate.api.realtime_auth import resume_token_signer
from voxgate.config import Settings
from voxgate.conversation.dependencies import SessionDependencies
from voxgate.conversation.http_tools import HttpToolRunner
from voxgate.conversation.session_telemetry import SessionTelemetry
from voxgate.outbound.policy import OutboundPolicy
from voxgate.protocol.config import LLMEndpoint, SessionConfig
from voxgate.speech.base import LanguageModel, SpeechStack
from voxgate.store.checkpoints import CheckpointStore, MemoryCheckpointStore

AgentLoader = Callable[[str], Awaitable[SessionConfig | None]]


def _stored_agent(load: AgentLoader) -> AgentLoader:
    return load


@dataclass(frozen=True, slots=True)
class TransportProfile:
    """How one kind of transport differs for the sessions it carries (fixed per transport)."""

    acknowledged_playout: bool = False
    """The client acknowledges what it played (Twilio marks): an interrupted reply keeps only that."""
    min_input_rate_burst_seconds: float = 0.0
    """Input audio may run at least this far ahead of real time (``VOXGATE_INPUT_RATE_BURST_SECONDS``
    when that is more): a transport that replays audio it buffered itself allows for its replay."""
    agent_loader: Callable[[AgentLoader], AgentLoader] = _stored_agent
    """Wraps the loader of stored agents (a phone call forces μ-law audio both ways)."""


def session_dependencies(
    state: Any,
    project_id: str,
    max_seconds: float,
    *,
    profile: TransportProfile,
    telemetry: SessionTelemetry,
    resume_only: str | None = None,
    facts: Mapping[str, str] | None = None,
) -> SessionDependencies:
    """A Session's dependencies on this server (``state``: the app's ``app.state``)."""
    settings: Settings = state.settings

    async def speech() -> SpeechStack:
        loader = state.speech
        if loader is None:
            raise RuntimeError("no speech stack is configured on this server")
        return await loader.get()  # type: ignore[no-any-return]

    async def load_agent(agent_id: str) -> SessionConfig | None:
        return await state.store.agents.load_for_session(project_id, agent_id)  # type: ignore[no-any-return]

    return SessionDependencies(
        settings=settings,
        speech=speech,
        load_agent=profile.agent_loader(load_agent),
        checkpoints=checkpoint_store(state, settings),
        project_id=project_id,
        max_duration_seconds=max_seconds,
        http_tools=http_tool_runner(state, settings),
        build_llm=_byo_llm_builder(settings),
        acknowledged_playout=profile.acknowledged_playout,
        input_rate_burst_seconds=max(settings.input_rate_burst_seconds, profile.min_input_rate_burst_seconds),
        resume_tokens=resume_token_signer(state, settings),
        resume_only=resume_only,
        telemetry=telemetry,
        session_facts=dict(facts or {}),
    )


def checkpoint_store(state: Any, settings: Settings) -> CheckpointStore:
    store = getattr(state, "checkpoints", None)
    if store is None:
        store = MemoryCheckpointStore(settings.resume_grace_seconds)
        state.checkpoints = store
    return store  # type: ignore[no-any-return]


def http_tool_runner(state: Any, settings: Settings) -> HttpToolRunner:
    runner = getattr(state, "http_tools", None)
    if runner is None:
        runner = HttpToolRunner(settings.http_tools_allowed_hosts)
        state.http_tools = runner
    return runner  # type: ignore[no-any-return]


def _byo_llm_builder(settings: Settings) -> Callable[[LLMEndpoint], LanguageModel]:
    """Builds an agent's bring-your-own LLM client under the server's outbound-URL policy."""
    policy = OutboundPolicy.allowing(settings.http_tools_allowed_hosts)

    def build(endpoint: LLMEndpoint) -> LanguageModel:
        from voxgate.speech.llm_openai import OpenAILLM

        return OpenAILLM.for_endpoint(endpoint.base_url, endpoint.model, endpoint.api_key, policy=policy)

    return build
