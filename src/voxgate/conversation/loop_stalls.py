"""Stalls of the server's own event loop, so that input pacing does not blame the client for them.

A session stamps an ``input.audio`` frame when its receive loop reads it. When the event loop cannot run
(a provider that blocks it, a long garbage collection, a starved CPU), the frames a client sends meanwhile
wait in the socket and are then read in one burst: by their read times they look like a client running
ahead of real time. :class:`LoopHeartbeat` ticks every :data:`HEARTBEAT_SECONDS`; a tick or a read that
comes :data:`STALL_MIN_SECONDS` later than the next tick was due reveals a stall, identified by the tick
before it. :class:`StallCredit` gives each reader (one per session) the length of every stall once, as
it grows, whichever of the late tick and the delayed reads runs first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

HEARTBEAT_SECONDS = 0.1
"""How often the heartbeat ticks (a timer callback; nothing else runs)."""
STALL_MIN_SECONDS = 0.2
"""Lateness below this is ordinary loop latency under load, not a stall (and is never credited)."""
STALL_WARNING_SECONDS = 1.0
"""A stall this long is logged as a warning: something blocked the event loop."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stall:
    began_at: float
    """``time.monotonic()`` of the last tick before the stall (identifies it)."""
    seconds: float
    """How much later than due the loop ran again (so far, for a stall still being measured)."""


class LoopHeartbeat:
    """A periodic timer on one event loop that remembers its last tick and the last stall it saw."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = HEARTBEAT_SECONDS) -> None:
        self.period = period
        self.last_tick = time.monotonic()
        self.last_stall: Stall | None = None
        self.stalls = 0
        """Stalls seen so far (for tests and debugging)."""
        self._closed = False
        # Only the loop refers to the heartbeat (through its timer), never the other way round, so the
        # per-loop registry below can forget a loop that is gone.
        loop.call_later(period, self._tick)

    def stall_at(self, now: float) -> Stall | None:
        """The stall ``now`` falls in (the loop has not ticked since it began), else the last one seen."""
        late = now - self.last_tick - self.period
        if late >= STALL_MIN_SECONDS:
            return Stall(self.last_tick, late)
        return self.last_stall

    def close(self) -> None:
        """Stop ticking (after the next tick, which is already scheduled)."""
        self._closed = True

    def _tick(self) -> None:
        now = time.monotonic()
        late = now - self.last_tick - self.period
        if late >= STALL_MIN_SECONDS:
            self.last_stall = Stall(self.last_tick, late)
            self.stalls += 1
            if late >= STALL_WARNING_SECONDS:
                logger.warning("the event loop stalled for %.2f s (audio read late is not dropped)", late)
        self.last_tick = now
        if not self._closed:
            asyncio.get_running_loop().call_later(self.period, self._tick)


_heartbeats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopHeartbeat] = weakref.WeakKeyDictionary()


def loop_heartbeat() -> LoopHeartbeat:
    """The running loop's heartbeat, started on first use."""
    loop = asyncio.get_running_loop()
    heartbeat = _heartbeats.get(loop)
    if heartbeat is None:
        heartbeat = _heartbeats[loop] = LoopHeartbeat(loop)
    return heartbeat


class StallCredit:
    """One reader's share of the loop's stalls: each stall's length is handed out once."""

    def __init__(self, heartbeat: LoopHeartbeat) -> None:
        self.heartbeat = heartbeat
        before = heartbeat.last_stall  # a stall before this reader existed delayed none of its reads
        self._stall_began: float | None = before.began_at if before else None
        self._credited = before.seconds if before else 0.0

    def new_credit(self, now: float) -> float:
        """Seconds of stall not yet credited to this reader, as of a read at ``now``."""
        stall = self.heartbeat.stall_at(now)
        if stall is None:
            return 0.0
        if stall.began_at != self._stall_began:
            self._stall_began = stall.began_at
            self._credited = 0.0
        extra = stall.seconds - self._credited
        if extra <= 0:
            return 0.0
        self._credited = stall.seconds
        return extra
