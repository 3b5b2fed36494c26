"""Live realtime sessions end when the API key behind them is revoked.

``voxgate keys revoke`` stops a key at once for new requests; a session already open on that key (opened
with the key itself, or with a one-time token the key minted) is ended within
``VOXGATE_CREDENTIAL_RECHECK_SECONDS``: it gets ``session.error`` ``unauthorized`` and close 1008. The
watch asks the database (shared by every instance, so revoking on one ends sessions on all) which of the
keys behind live sessions are no longer active, one query per interval, only while sessions are watched.

Sessions resumed with a resume token and Twilio phone calls (authenticated by Twilio's signature) are not
tied to a key and are not watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from voxgate.config import Settings
from voxgate.protocol.errors import ErrorCode
from voxgate.protocol.events import ProtocolError
from voxgate.store import Store

logger = logging.getLogger(__name__)

KEY_REVOKED_MESSAGE = "the API key of this session was revoked"
EndSession = Callable[[ProtocolError], None]


class RevocationWatch:
    def __init__(self, store: Store, interval_seconds: float) -> None:
        self._store = store
        self._interval = interval_seconds
        self._watched: dict[str, dict[int, EndSession]] = {}
        self._next_ticket = 0
        self._task: asyncio.Task[None] | None = None

    def watch(self, key_id: str | None, end_session: EndSession) -> Callable[[], None]:
        """Call ``end_session`` with an ``unauthorized`` error once ``key_id`` is revoked. Returns the
        function that stops watching (call it when the session ends). A None key is not watched."""
        if key_id is None:
            return lambda: None
        self._next_ticket += 1
        ticket = self._next_ticket
        self._watched.setdefault(key_id, {})[ticket] = end_session
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="revocation-watch")

        def unwatch() -> None:
            sessions = self._watched.get(key_id)
            if sessions is not None:
                sessions.pop(ticket, None)
                if not sessions:
                    del self._watched[key_id]

        return unwatch

    async def check_now(self) -> None:
        """One round: end the sessions of every watched key that is no longer active."""
        if not self._watched:
            return
        revoked = await self._store.keys.inactive_among(set(self._watched))
        for key_id in revoked:
            sessions = self._watched.pop(key_id, {})
            if sessions:
                logger.info("API key %s was revoked: ending its %d live session(s)", key_id, len(sessions))
            for end_session in sessions.values():
                end_session(ProtocolError(ErrorCode.UNAUTHORIZED, KEY_REVOKED_MESSAGE))

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self._interval)
            try:
                await self.check_now()
            except Exception as exc:  # the database is down: sessions go on, checked again next round
                logger.warning("could not check for revoked API keys: %s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def revocation_watch(state: Any) -> RevocationWatch:
    """The app's watch (created on first use; closed with the app)."""
    watch: RevocationWatch | None = getattr(state, "revocation_watch", None)
    if watch is None:
        settings: Settings = state.settings
        watch = RevocationWatch(state.store, settings.credential_recheck_seconds)
        state.revocation_watch = watch
        state.shutdown_callbacks.append(watch.close)
    return watch
