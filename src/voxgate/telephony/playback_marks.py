"""Twilio ``mark`` bookkeeping: what the caller has actually heard of each reply.

The bridge sends a mark after every chunk of agent audio. Twilio echoes a mark when all audio queued
before it has been played to the caller, and ALSO when a ``clear`` discarded that audio (TWILIO.md §2),
so an echo proves playback only if no ``clear`` was sent after the mark. :class:`PlaybackMarks` names
each mark, remembers the reply and the reply-relative position (ms) it stands for, and forgets every
pending mark when the bridge clears, so the echoes a ``clear`` provokes count for nothing.

Playback is in order, so an echo also settles every older pending mark (a lost echo does no harm).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_PENDING = 4_000
"""Pending marks kept at most (200 s of 50 ms chunks); a peer that never echoes cannot grow memory."""


@dataclass(frozen=True, slots=True)
class HeardPosition:
    """The caller has heard reply ``reply_id`` up to ``played_ms`` milliseconds from its start."""

    reply_id: str
    played_ms: float


class PlaybackMarks:
    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._max_pending = max_pending
        self._pending: OrderedDict[str, HeardPosition] = OrderedDict()
        self._reply_id: str | None = None
        self._reply_ms = 0.0
        self._counter = 0

    def after_audio(self, reply_id: str, audio_ms: float) -> str:
        """``audio_ms`` of reply ``reply_id`` was just sent: the name of the mark to send after it."""
        if reply_id != self._reply_id:
            self._reply_id = reply_id
            self._reply_ms = 0.0
        self._reply_ms += audio_ms
        self._counter += 1
        name = f"{reply_id}#{self._counter}"
        self._pending[name] = HeardPosition(reply_id, self._reply_ms)
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        return name

    def echoed(self, name: str) -> HeardPosition | None:
        """Twilio echoed mark ``name``: the position it proves heard, or None (unknown or cleared)."""
        position = self._pending.get(name)
        if position is None:
            return None
        while self._pending:
            oldest, _ = self._pending.popitem(last=False)
            if oldest == name:
                break
        return position

    def cleared(self) -> int:
        """The bridge sent ``clear``: every pending mark's audio was discarded. Returns how many."""
        count = len(self._pending)
        self._pending.clear()
        return count

    @property
    def pending(self) -> int:
        return len(self._pending)
