"""A session's timers: its configuration deadline and duration cap, and each tool call's deadline. When one
fires, its input is posted to the session's queue (handled in order with everything else)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class SessionTimers:
    def __init__(self, post: Callable[[Any], None]) -> None:
        self._post = post
        self._handles: dict[str, asyncio.TimerHandle] = {}

    def set(self, key: str, delay_seconds: float, item: Any) -> None:
        """Post ``item`` in ``delay_seconds`` (replaces a timer of the same key)."""
        self.clear(key)
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(max(0.0, delay_seconds), self._fire, key, item)

    def clear(self, key: str) -> None:
        if (handle := self._handles.pop(key, None)) is not None:
            handle.cancel()

    def clear_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def _fire(self, key: str, item: Any) -> None:
        self._handles.pop(key, None)
        self._post(item)
