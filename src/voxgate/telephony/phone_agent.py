"""A stored agent's configuration made fit for a phone call.

The caller's side of a Twilio stream only speaks G.711 μ-law at 8 kHz, which is byte-identical to the
protocol's ``audio/pcmu`` (TWILIO.md §4.2). A phone agent should be stored with ``audio/pcmu`` input and
output; when it is not, the bridge still answers the call and forces ``audio/pcmu`` both ways for that
session (the stored agent is not changed), so audio crosses the bridge with no transcoding.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voxgate.protocol.config import AudioFormat, SessionConfig

logger = logging.getLogger(__name__)

PHONE_ENCODING = "audio/pcmu"

AgentLoader = Callable[[str], Awaitable[SessionConfig | None]]


def phone_session_config(config: SessionConfig) -> SessionConfig:
    """``config`` with μ-law (``audio/pcmu``) input and output; everything else unchanged."""
    mulaw = AudioFormat(encoding=PHONE_ENCODING)
    if config.input.format == mulaw and config.output.format == mulaw:
        return config
    return config.model_copy(
        update={
            "input": config.input.model_copy(update={"format": mulaw}),
            "output": config.output.model_copy(update={"format": mulaw}),
        }
    )


def phone_agent_loader(load_agent: AgentLoader) -> AgentLoader:
    """Wrap a session's stored-agent loader so every agent it loads uses μ-law both ways."""

    async def load(agent_id: str) -> SessionConfig | None:
        config = await load_agent(agent_id)
        if config is None:
            return None
        phone = phone_session_config(config)
        if phone is not config:
            logger.info(
                "agent %s is stored with %s in / %s out; this phone call uses %s both ways",
                agent_id,
                config.input.format.encoding,
                config.output.format.encoding,
                PHONE_ENCODING,
            )
        return phone

    return load


def bound_agent_loader(agent_id: str, load_agent: AgentLoader) -> AgentLoader:
    """A loader that loads only ``agent_id`` (the agent a phone-stream token was minted for): any other
    id reads as unknown, so a stream token cannot open a session with another agent of the project."""

    async def load(requested: str) -> SessionConfig | None:
        return await load_agent(requested) if requested == agent_id else None

    return load
