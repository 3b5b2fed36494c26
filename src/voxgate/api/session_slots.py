"""The per-process cap on concurrent realtime sessions (``VOXGATE_MAX_SESSIONS``, PROTOCOL.md §11
``at_capacity``).

Every ``/v1/ws`` connection and every Twilio media stream takes one :class:`SessionSlot` after it is
authenticated and before its session is created, and gives it back when it ends. With ``limit`` 0 there is
no cap. The count is per process: with several uvicorn workers or instances each has its own cap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class SessionSlot:
    """One admitted session's place; :meth:`release` is idempotent."""

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back: Callable[[], None] | None = give_back

    def release(self) -> None:
        if self._give_back is not None:
            self._give_back()
            self._give_back = None


class SessionSlots:
    def __init__(self, limit: int) -> None:
        """``limit``: the most sessions at once; 0 = unlimited."""
        self.limit = limit
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> SessionSlot | None:
        """A slot, or None when ``limit`` sessions are already open."""
        if self.limit and self._in_use >= self.limit:
            return None
        self._in_use += 1
        return SessionSlot(self._give_back)

    def _give_back(self) -> None:
        self._in_use -= 1


def session_slots(state: Any) -> SessionSlots:
    """The app's slots (``app.state.session_slots``), created on first use from ``state.settings``."""
    slots = getattr(state, "session_slots", None)
    if slots is None:
        slots = SessionSlots(state.settings.max_sessions)
        state.session_slots = slots
    return slots  # type: ignore[no-any-return]
