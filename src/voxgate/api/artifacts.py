"""Artifact downloads by signed link: ``GET /v1/artifacts/{session_id}/{name}?expires=&signature=``.

No API key: the link itself is the credential (history.links), valid until ``expires``. An expired link
is a 403 ``link_expired``, a tampered one a 403 ``invalid_signature``; an artifact that no longer exists
(deleted, past retention) a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from voxgate.api.rest_errors import ApiError, described, error_body
from voxgate.history.artifacts import CONTENT_TYPES, NAME_PATTERN
from voxgate.history.links import ARTIFACTS_PATH
from voxgate.history.service import history_of

router = APIRouter(prefix=ARTIFACTS_PATH, tags=["sessions"])


@router.get(
    "/{session_id}/{name}",
    response_class=FileResponse,
    responses={
        200: {"description": "The artifact", "content": {t: {} for t in set(CONTENT_TYPES.values())}},
        403: described("The link expired or its signature does not match"),
        404: described("No such artifact"),
    },
    operation_id="downloadArtifact",
    summary="Download a session artifact (signed link from GET /v1/sessions/{id})",
)
async def download_artifact(
    request: Request,
    session_id: str,
    name: str,
    expires: Annotated[str | None, Query()] = None,
    signature: Annotated[str | None, Query()] = None,
) -> FileResponse:
    history = history_of(request.app.state)
    links = getattr(history.artifacts, "links", None) if history is not None else None
    if history is None or links is None:
        raise ApiError(404, error_body("not_found", "No such artifact"))
    problem = links.check(links.path(session_id, name), expires, signature)
    if problem == "expired":
        raise ApiError(403, error_body("link_expired", "The link expired; get a new one from the session"))
    if problem is not None:
        raise ApiError(403, error_body("invalid_signature", "The link is not valid"))
    match = NAME_PATTERN.fullmatch(name)
    path = history.artifacts.local_file(session_id, name)
    if match is None or path is None:
        raise ApiError(404, error_body("not_found", "No such artifact"))
    return FileResponse(path, media_type=CONTENT_TYPES[match.group(1)], filename=name)
