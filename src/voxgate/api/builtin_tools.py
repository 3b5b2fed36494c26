"""``GET /v1/builtin-tools`` (HOSTED.md §7): the tools the server itself provides.

An agent uses one by listing its name among its ``tools`` without an ``http`` block (see
:mod:`voxgate.conversation.builtin_tools`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voxgate.api.auth import require_principal
from voxgate.api.rest_errors import RESPONSE_401
from voxgate.conversation.builtin_tools import BUILTIN_TOOLS

router = APIRouter(prefix="/v1/builtin-tools", tags=["tools"])


class BuiltinToolItem(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    execution_mode: Literal["interactive", "hold"]


class BuiltinToolList(BaseModel):
    builtin_tools: list[BuiltinToolItem]


@router.get(
    "",
    response_model=BuiltinToolList,
    responses={**RESPONSE_401},
    operation_id="listBuiltinTools",
    summary="The tools the server provides (list one by name in an agent's tools)",
    dependencies=[Depends(require_principal)],
)
async def list_builtin_tools() -> JSONResponse:
    return JSONResponse({"builtin_tools": [tool.listing() for tool in BUILTIN_TOOLS]})
