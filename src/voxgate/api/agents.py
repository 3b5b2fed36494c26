"""Stored agents REST API: ``/v1/agents`` (PROTOCOL.md §3, HOSTED.md §1-§2).

Bodies are read and validated here rather than by FastAPI so that (a) malformed JSON is a 400, (b) the
agent models see the operator's validation context (hosts allowed for HTTP tools) and (c) strings the
database cannot store (NUL, lone surrogates) are a 422 instead of a driver error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from voxgate.api.agent_prompt_budget import check_new_agent, updated_agent_check
from voxgate.api.auth import require_principal
from voxgate.api.json_bodies import read_json_object
from voxgate.api.list_pages import PageQuery, ResponseMetadata, list_body
from voxgate.api.rest_errors import (
    RESPONSE_401,
    RESPONSE_422,
    RESPONSES_BODY,
    agent_not_found,
    described,
    from_pydantic,
    update_conflict,
    validation_failed,
)
from voxgate.config import Settings
from voxgate.protocol.agents import AgentCreate, AgentRecord, AgentUpdate
from voxgate.store import AgentDocumentError, AgentUpdateConflict, Principal, Store

router = APIRouter(prefix="/v1/agents", tags=["agents"])

AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,128}")
RESPONSE_404 = {
    404: described("No agent with this id in the caller's project"),
    **RESPONSE_422,  # replaces FastAPI's default 422 entry; path ids are checked by hand (404)
}

AgentId = Annotated[str, Path(description="The agent id (`agent_<32 hex>`).")]
CallerPrincipal = Annotated[Principal, Depends(require_principal)]


class AgentList(BaseModel):
    """One page of agents, newest first; items are full records."""

    agents: list[AgentRecord]
    has_more: bool
    response_metadata: ResponseMetadata


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


REQUEST_BODY_MODELS: tuple[type[BaseModel], ...] = (AgentCreate, AgentUpdate)
"""Models referenced by ``openapi_extra`` below; app.py adds their schemas to the OpenAPI components."""


_AGENT_LINK = {"parameters": {"agent_id": "$response.body#/id"}}
CREATED_LINKS = {
    201: {
        "description": "The created agent",
        "links": {
            "GetAgent": {"operationId": "getAgent", **_AGENT_LINK},
            "UpdateAgent": {"operationId": "updateAgent", **_AGENT_LINK},
            "DeleteAgent": {"operationId": "deleteAgent", **_AGENT_LINK},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=AgentRecord,
    responses={**CREATED_LINKS, **RESPONSE_401, **RESPONSES_BODY},
    operation_id="createAgent",
    openapi_extra=_request_body(AgentCreate),
    summary="Create an agent",
)
async def create_agent(request: Request, principal: CallerPrincipal) -> JSONResponse:
    data = await read_json_object(request)
    try:
        create = AgentCreate.model_validate(data, context=_validation_context(request))
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    await check_new_agent(request, create)
    try:
        record = await _store(request).agents.create(principal.project_id, create)
    except AgentDocumentError as exc:
        raise validation_failed([(("body", *exc.loc), exc.message, exc.error_type)]) from None
    return JSONResponse(record, status_code=201)


@router.get(
    "",
    response_model=AgentList,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="listAgents",
    summary="List agents, newest first (cursor paging)",
)
async def list_agents(
    request: Request, principal: CallerPrincipal, page: Annotated[PageQuery, Depends()]
) -> JSONResponse:
    agents = await _store(request).agents.list(principal.project_id, page.request)
    return JSONResponse(list_body("agents", agents))


@router.get(
    "/{agent_id}",
    response_model=AgentRecord,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="getAgent",
    summary="Retrieve an agent",
)
async def get_agent(request: Request, principal: CallerPrincipal, agent_id: AgentId) -> JSONResponse:
    _check_id(agent_id)
    record = await _store(request).agents.get(principal.project_id, agent_id)
    if record is None:
        raise agent_not_found()
    return JSONResponse(record)


@router.put(
    "/{agent_id}",
    response_model=AgentRecord,
    responses={**RESPONSE_401, **RESPONSE_404, **RESPONSES_BODY},
    openapi_extra=_request_body(AgentUpdate),
    operation_id="updateAgent",
    summary="Update an agent (partial: send only what changes)",
)
async def update_agent(request: Request, principal: CallerPrincipal, agent_id: AgentId) -> JSONResponse:
    _check_id(agent_id)
    store = _store(request)
    if await store.agents.get(principal.project_id, agent_id) is None:
        raise agent_not_found()
    data = await read_json_object(request)
    try:
        update = AgentUpdate.model_validate(data, context=_validation_context(request))
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    try:
        record = await store.agents.update(
            principal.project_id, agent_id, update, check=await updated_agent_check(request)
        )
    except AgentDocumentError as exc:
        raise validation_failed([(("body", *exc.loc), exc.message, exc.error_type)]) from None
    except AgentUpdateConflict as exc:
        raise update_conflict(str(exc)) from None
    if record is None:
        raise agent_not_found()
    return JSONResponse(record)


@router.delete(
    "/{agent_id}",
    status_code=204,
    response_class=Response,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="deleteAgent",
    summary="Delete an agent",
)
async def delete_agent(request: Request, principal: CallerPrincipal, agent_id: AgentId) -> Response:
    _check_id(agent_id)
    if not await _store(request).agents.delete(principal.project_id, agent_id):
        raise agent_not_found()
    return Response(status_code=204)


# --- request handling -----------------------------------------------------------------------------
def _store(request: Request) -> Store:
    return request.app.state.store


def _validation_context(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {"allowed_private_hosts": settings.http_tools_allowed_hosts}


def _check_id(agent_id: str) -> None:
    if not AGENT_ID_PATTERN.fullmatch(agent_id):
        raise agent_not_found()
