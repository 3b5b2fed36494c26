"""`session.error` codes and WebSocket close codes (PROTOCOL.md §11)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVER_ERROR = "server_error"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_FORBIDDEN = "session_forbidden"
    SESSION_EXPIRED = "session_expired"
    AGENT_INIT_FAILED = "agent_init_failed"
    AGENT_TIMEOUT = "agent_timeout"
    INVALID_FORMAT = "invalid_format"
    INVALID_AUDIO = "invalid_audio"
    INVALID_VALUE = "invalid_value"
    IMMUTABLE_FIELD = "immutable_field"
    INVALID_CONFIG = "invalid_config"
    AGENT_NOT_FOUND = "agent_not_found"
    AGENT_ID_NOT_FIRST = "agent_id_not_first"
    AUDIO_RATE_VIOLATION = "audio_rate_violation"
    AT_CAPACITY = "at_capacity"


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY_VIOLATION = 1008
    INTERNAL_ERROR = 1011


# Codes after which the server closes the socket, and with which close code.
CLOSING_CODES: dict[ErrorCode, CloseCode] = {
    ErrorCode.UNAUTHORIZED: CloseCode.POLICY_VIOLATION,
    ErrorCode.FORBIDDEN: CloseCode.POLICY_VIOLATION,
    ErrorCode.INTERNAL_ERROR: CloseCode.INTERNAL_ERROR,
    ErrorCode.SESSION_NOT_FOUND: CloseCode.POLICY_VIOLATION,
    ErrorCode.SESSION_FORBIDDEN: CloseCode.POLICY_VIOLATION,
    ErrorCode.SESSION_EXPIRED: CloseCode.POLICY_VIOLATION,
    ErrorCode.AGENT_INIT_FAILED: CloseCode.INTERNAL_ERROR,
    ErrorCode.AGENT_TIMEOUT: CloseCode.INTERNAL_ERROR,
    ErrorCode.AGENT_NOT_FOUND: CloseCode.POLICY_VIOLATION,
    ErrorCode.AT_CAPACITY: CloseCode.POLICY_VIOLATION,
}
