"""`session.error` codes and WebSocket close codes (PROTOCOL.md §11, HOSTED.md §4).

The wire spells every code in lower case, in ``session.error.code`` and in the close reason alike. Whether
an error closes the connection is a property of the code (:data:`CLOSING_CODES`) except for
``internal_error``, which closes only where the caller says so (a failure during setup, 1011); a failure
while the session is live is reported and the session carries on.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    AGENT_ID_NOT_FIRST = "agent_id_not_first"
    AGENT_NOT_FOUND = "agent_not_found"
    AT_CAPACITY = "at_capacity"
    AUDIO_RATE_VIOLATION = "audio_rate_violation"
    CONCURRENCY_EXCEEDED = "concurrency_exceeded"
    IMMUTABLE_FIELD = "immutable_field"
    INTERNAL_ERROR = "internal_error"
    INVALID_AUDIO = "invalid_audio"
    INVALID_CONFIG = "invalid_config"
    INVALID_FORMAT = "invalid_format"
    INVALID_VALUE = "invalid_value"
    INVALID_WEBHOOK = "invalid_webhook"
    SESSION_EXPIRED = "session_expired"
    SESSION_FORBIDDEN = "session_forbidden"
    SESSION_NOT_FOUND = "session_not_found"
    UNAUTHORIZED = "unauthorized"


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY_VIOLATION = 1008
    INTERNAL_ERROR = 1011


# Codes after which the server always closes the socket, and with which close code.
CLOSING_CODES: dict[ErrorCode, CloseCode] = {
    ErrorCode.UNAUTHORIZED: CloseCode.POLICY_VIOLATION,
    ErrorCode.SESSION_NOT_FOUND: CloseCode.POLICY_VIOLATION,
    ErrorCode.SESSION_FORBIDDEN: CloseCode.POLICY_VIOLATION,
    ErrorCode.SESSION_EXPIRED: CloseCode.POLICY_VIOLATION,
    ErrorCode.AGENT_NOT_FOUND: CloseCode.POLICY_VIOLATION,
    ErrorCode.AT_CAPACITY: CloseCode.POLICY_VIOLATION,
}
