"""Twilio calls already answered: the voice webhook mints one phone-stream token per ``CallSid``.

A signed webhook request carries no timestamp, so a captured one stays valid for ever; remembering the
``CallSid``s answered (for :data:`ANSWERED_CALL_MEMORY`, longer than any call may last) makes a replay
mint nothing. The primary key makes "first answer" atomic across instances sharing the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voxgate.store.tables import AnsweredCallRow, utc_now

ANSWERED_CALL_MEMORY = timedelta(hours=24)
_calls = AnsweredCallRow.__table__


class AnsweredCalls:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def first_answer(self, call_sid: str) -> bool:
        """Record ``call_sid`` as answered: True the first time, False when it was answered before."""
        now = self._clock()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    delete(_calls).where(_calls.c.answered_at < now - ANSWERED_CALL_MEMORY)
                )
                await connection.execute(insert(_calls).values(call_sid=call_sid, answered_at=now))
        except IntegrityError:
            return False
        return True
