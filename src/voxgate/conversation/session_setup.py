"""Getting a session ready: the I/O between a connection's first message and ``session.ready``.

The first ``session.update`` names a stored agent (loaded from the store) or configures the session
inline; a ``session.resume`` claims a checkpoint. Either way the speech stack must be loaded (bounded by
the agent-ready timeout), the voice must exist and a bring-your-own LLM must be built. Each step returns
its result or the :class:`~voxgate.protocol.events.ProtocolError` to report; the configuration rules
themselves are pure (:mod:`voxgate.protocol.session_config`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from voxgate.conversation.dependencies import SessionDependencies
from voxgate.conversation.pre_connect import apply_pre_connect
from voxgate.conversation.prompt_limits import prompt_budget_error
from voxgate.protocol.config import SessionConfig
from voxgate.protocol.errors import CloseCode, ErrorCode
from voxgate.protocol.events import (
    ProtocolError,
    SessionResume,
    SessionUpdate,
    protocol_error_from_validation,
)
from voxgate.protocol.session_config import first_update_error, inline_config, parse_patch, with_media_types
from voxgate.speech.base import LanguageModel, SpeechStack
from voxgate.store.checkpoints import CheckpointStoreUnavailable, ClaimOutcome, SessionCheckpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SetUp:
    """A session ready to start: a new one, or a resumed one with its ``checkpoint``."""

    prepared: Prepared
    session_id: str
    checkpoint: SessionCheckpoint | None = None


async def set_up(
    deps: SessionDependencies, first: SessionUpdate | SessionResume, new_session_id: str
) -> SetUp | ProtocolError:
    """Everything between a connection's first message and ``session.ready``."""
    if isinstance(first, SessionUpdate):
        if deps.resume_only is not None:
            message = "a resume token only resumes its own session: send session.resume"
            return ProtocolError(ErrorCode.SESSION_FORBIDDEN, message, "type")
        config = await first_configuration(deps, first.session)
        if isinstance(config, ProtocolError):
            return config
        facts = {**deps.session_facts, "session_id": new_session_id, "agent_id": config.agent_id or ""}
        config = await apply_pre_connect(config, deps.http_tools, facts)
        prepared = await prepare(deps, config)
        return prepared if isinstance(prepared, ProtocolError) else SetUp(prepared, new_session_id)
    checkpoint = await claim_checkpoint(deps, first.session_id)
    if isinstance(checkpoint, ProtocolError):
        return checkpoint
    prepared = await prepare(deps, SessionConfig.model_validate(checkpoint.config))
    if isinstance(prepared, ProtocolError):
        await deps.checkpoints.detach(checkpoint.session_id)  # resumable again
        return prepared
    return SetUp(prepared, checkpoint.session_id, checkpoint)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A configuration whose models are loaded."""

    config: SessionConfig
    stack: SpeechStack
    llm: LanguageModel


async def first_configuration(
    deps: SessionDependencies, session: dict[str, Any]
) -> SessionConfig | ProtocolError:
    """The configuration a connection's first ``session.update`` asks for (a stored agent's, or inline)."""
    parsed = parse_patch(session)
    if isinstance(parsed, ProtocolError):
        return parsed
    if parsed.ignored:
        logger.info("session.update: ignored unknown fields %s", ", ".join(parsed.ignored))
    patch = parsed.patch
    if (error := first_update_error(session, patch)) is not None:
        return error
    if patch.agent_id is None:
        return inline_config(patch)
    config = await deps.load_agent(patch.agent_id)
    if config is None:
        return ProtocolError(ErrorCode.AGENT_NOT_FOUND, f"agent '{patch.agent_id}' was not found", "agent_id")
    try:
        config = with_media_types(config, patch)
    except ValidationError as exc:
        return protocol_error_from_validation(exc, prefix="session")
    return config.model_copy(update={"agent_id": patch.agent_id})


async def claim_checkpoint(deps: SessionDependencies, session_id: str) -> SessionCheckpoint | ProtocolError:
    """Take over a dropped session (``session.resume``)."""
    if deps.resume_only not in (None, session_id):
        return ProtocolError(
            ErrorCode.SESSION_FORBIDDEN, "the resume token belongs to another session", "session_id"
        )
    try:
        outcome, checkpoint = await deps.checkpoints.claim(session_id, deps.project_id)
    except CheckpointStoreUnavailable as exc:
        logger.warning("resume of %s failed: %s", session_id, exc)
        return ProtocolError(
            ErrorCode.INTERNAL_ERROR,
            f"session storage is unavailable ({exc}); send session.resume again shortly",
            "session_id",
        )
    if outcome is ClaimOutcome.FORBIDDEN:
        return ProtocolError(
            ErrorCode.SESSION_FORBIDDEN, "the session belongs to another account", "session_id"
        )
    if outcome is not ClaimOutcome.CLAIMED or checkpoint is None:
        return ProtocolError(ErrorCode.SESSION_NOT_FOUND, "no resumable session with this id", "session_id")
    return checkpoint


async def prepare(deps: SessionDependencies, config: SessionConfig) -> Prepared | ProtocolError:
    """Load the speech stack (bounded by the agent-ready timeout), check the voice, build a BYO LLM."""
    try:
        async with asyncio.timeout(deps.settings.agent_ready_timeout_seconds):
            stack = await deps.speech()
    except TimeoutError:
        return _init_failure("the agent was not ready within the time limit")
    except Exception as exc:
        logger.exception("speech stack failed to load")
        return _init_failure(f"the agent failed to initialise: {exc}")
    if not stack.tts.has_voice(config.output.voice):
        return ProtocolError(
            ErrorCode.INVALID_VALUE,
            f"voice '{config.output.voice}' is not installed on this server",
            "session.output.voice",
        )
    llm = stack.llm
    if config.llm:
        if deps.build_llm is None:
            return _init_failure("bring-your-own LLM is not available")
        try:
            llm = deps.build_llm(config.llm[0])
        except Exception as exc:
            return _init_failure(f"the agent's LLM failed: {exc}")
    if (error := await prompt_budget_error(deps.settings, config, llm)) is not None:
        return error
    return Prepared(config, stack, llm)


def _init_failure(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INTERNAL_ERROR, message, close=CloseCode.INTERNAL_ERROR)
