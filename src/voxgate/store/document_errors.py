"""The error raised when a valid request cannot be applied to a stored document."""

from __future__ import annotations

Loc = tuple[str | int, ...]


class AgentDocumentError(ValueError):
    """A request is well-formed but cannot be applied (e.g. keeping a header secret that was never set).
    ``loc`` is the field's path in the request body."""

    def __init__(self, loc: Loc, message: str, error_type: str = "value_error") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.error_type = error_type
