"""The session's input queue, with room for a bounded number of items.

:meth:`put_nowait` never blocks or refuses (the session's own notifications must always get in); a
transport that reads from a client calls :meth:`wait_for_room` before it reads the next frame, so while the
session is busy (or blocked sending to a client that does not read) frames stay in the client's socket
instead of piling up in memory. The queue therefore holds at most ``room`` client frames plus whatever
the session posted itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

MAX_QUEUED_INPUTS = 32
"""Items the queue takes before a reading transport waits (a client frame is at most
``VOXGATE_MAX_WS_MESSAGE_BYTES``, so one session's backlog stays under 32 of those)."""


class SessionInputQueue(asyncio.Queue[Any]):
    def __init__(self, room: int = MAX_QUEUED_INPUTS) -> None:
        super().__init__()
        self.room = room
        self._has_room = asyncio.Event()
        self._has_room.set()

    def _put(self, item: Any) -> None:
        super()._put(item)  # type: ignore[misc]
        if self.qsize() >= self.room:
            self._has_room.clear()

    def _get(self) -> Any:
        item = super()._get()  # type: ignore[misc]
        if self.qsize() < self.room:
            self._has_room.set()
        return item

    async def wait_for_room(self) -> None:
        """Return once the queue holds fewer than ``room`` items."""
        await self._has_room.wait()
