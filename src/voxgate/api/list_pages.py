"""The REST shape of a cursor-paged list (HOSTED.md §1), shared by every list endpoint.

    GET /v1/<things>?limit=N&cursor=C
    -> {"<things>": [...], "has_more": bool, "response_metadata": {"next_cursor": "..." | ""}}

An endpoint takes ``PageQuery`` as a dependency, passes ``page_query.request`` to the store (see
``store.paging``) and answers ``list_body("<things>", page)``. A bad cursor is a 422 ``invalid_value``
with ``param: "cursor"``, like a ``limit`` out of 1-200.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from voxgate.store.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest


class ResponseMetadata(BaseModel):
    next_cursor: str = Field(description="Pass as `cursor` for the next page; empty on the last page.")


class PageQuery:
    """The ``limit`` and ``cursor`` query parameters (a FastAPI dependency class)."""

    def __init__(
        self,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-200).")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None,
            Query(description="`response_metadata.next_cursor` of the previous page; omit for the first."),
        ] = None,
    ) -> None:
        self.request = PageRequest(limit=limit, cursor=cursor or None)


def list_body(name: str, page: Page[Any]) -> dict[str, Any]:
    items: Sequence[Any] = page.rows
    return {
        name: list(items),
        "has_more": page.has_more,
        "response_metadata": {"next_cursor": page.next_cursor},
    }
