"""Cursor paging of a list, newest first (HOSTED.md §1), for any table with ``created_at`` and ``id``.

Keyset paging on ``(created_at, id)`` descending: a page is the rows strictly after the cursor's
position, so rows inserted meanwhile (newer: before the cursor) neither shift nor repeat items, unlike
an offset. The cursor is opaque to clients (url-safe base64 of a small JSON object) and names the list it
belongs to (``scope``: the list name and the caller's project), so a cursor from another list or another
project is refused, as is anything that does not decode.

    page = await paginate(session, select(AgentRow).where(...), AgentRow.created_at, AgentRow.id,
                          PageRequest(limit=50, cursor=cursor), scope=f"agents:{project_id}")
    page.rows, page.has_more, page.next_cursor  # next_cursor is "" on the last page
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_CURSOR_VERSION = 1
_MAX_CURSOR_CHARS = 512

Row = TypeVar("Row")


class InvalidCursor(ValueError):
    """The cursor is malformed, or belongs to another list or project."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]
    next_cursor: str
    """Empty on the last page."""

    @property
    def has_more(self) -> bool:
        return bool(self.next_cursor)


def encode_cursor(position: Position, scope: str) -> str:
    payload = {
        "v": _CURSOR_VERSION,
        "s": _scope_tag(scope),
        "t": position.created_at.astimezone(UTC).isoformat(),
        "i": position.id,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> Position:
    """The position a cursor points after; ``InvalidCursor`` when it is not a cursor of ``scope``."""
    if not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise InvalidCursor("the cursor is not valid")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION:
            raise ValueError("not a cursor")
        created_at = datetime.fromisoformat(payload["t"])
        position_id = payload["i"]
        if created_at.tzinfo is None or not isinstance(position_id, str):
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidCursor("the cursor is not valid") from None
    if payload.get("s") != _scope_tag(scope):
        raise InvalidCursor("the cursor belongs to another list or project")
    return Position(created_at, position_id)


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[str],
    request: PageRequest,
    scope: str,
) -> Page[Any]:
    """Run ``query`` (a select of whole ORM rows) for one page, newest first. Raises ``InvalidCursor``."""
    if request.cursor is not None:
        after = decode_cursor(request.cursor, scope)
        query = query.where(
            or_(created_at < after.created_at, and_(created_at == after.created_at, row_id < after.id))
        )
    query = query.order_by(created_at.desc(), row_id.desc()).limit(request.limit + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) <= request.limit:
        return Page(rows, "")
    rows = rows[: request.limit]
    last = rows[-1]
    position = Position(getattr(last, created_at.key), getattr(last, row_id.key))
    return Page(rows, encode_cursor(position, scope))


def _scope_tag(scope: str) -> str:
    """A short digest of the scope: the cursor does not spell out project ids."""
    return hashlib.sha256(scope.encode()).hexdigest()[:16]
