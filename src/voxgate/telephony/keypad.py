"""DTMF key presses collected into one keypad entry for the agent.

A caller typing an account number presses several keys; answering each key separately would make the
agent talk over the typing. :class:`KeypadEntry` gathers digits until ``#`` is pressed, ``max_digits``
are reached, or ``pause_seconds`` pass without a key, then hands the whole entry over once. The bridge
gives it to the agent as user text (:func:`keypad_text`) and asks for a reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_PAUSE_SECONDS = 2.0
DEFAULT_MAX_DIGITS = 32
TERMINATOR = "#"


def keypad_text(digits: str) -> str:
    """The user message the agent receives for a keypad entry."""
    return f"(The caller typed {digits} on the phone keypad.)"


class KeypadEntry:
    def __init__(
        self,
        deliver: Callable[[str], None],
        *,
        pause_seconds: float = DEFAULT_PAUSE_SECONDS,
        max_digits: int = DEFAULT_MAX_DIGITS,
    ) -> None:
        self._deliver = deliver
        self._pause_seconds = pause_seconds
        self._max_digits = max_digits
        self._digits: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def press(self, digit: str) -> None:
        """One key (``0-9 * # A-D``). Must be called on the event loop."""
        self._digits.append(digit)
        self._cancel_timer()
        if digit == TERMINATOR or len(self._digits) >= self._max_digits:
            self.flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(self._pause_seconds, self.flush)

    def flush(self) -> None:
        """Hand over what was typed so far (nothing if nothing was)."""
        self._cancel_timer()
        if self._digits:
            digits, self._digits = "".join(self._digits), []
            self._deliver(digits)

    def cancel(self) -> None:
        """Drop what was typed (the call ended)."""
        self._cancel_timer()
        self._digits.clear()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
