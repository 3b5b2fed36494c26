"""Webhook subscriptions REST API (HOSTED.md §6): ``/v1/webhook-subscriptions``.

Create takes ``{url, events, secret, agent_id?, enabled?}``; update (``PATCH``, also ``PUT``) any of them.
``secret`` (32-512 characters) is write-only: a new one bumps ``secret_version``. ``url`` obeys the
outbound-URL policy of HTTP tools (https, public addresses; ``VOXGATE_HTTP_TOOLS_ALLOWED_HOSTS``).
``agent_id`` (null: every agent of the project) must name an agent of the project. Unknown fields are
ignored. Bodies are validated here (not by FastAPI) so that every problem is a 422 with its ``param``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voxgate.api.auth import require_principal
from voxgate.api.json_bodies import read_json_object
from voxgate.api.list_pages import PageQuery, ResponseMetadata, list_body
from voxgate.api.rest_errors import (
    RESPONSE_401,
    RESPONSE_422,
    RESPONSES_BODY,
    ApiError,
    described,
    validation_failed,
)
from voxgate.history.webhook_events import events_problem, secret_problem, url_problem
from voxgate.outbound.policy import OutboundPolicy
from voxgate.store import Principal, Store
from voxgate.store.webhook_subscriptions import UNSET, SubscriptionFields

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"])

SUBSCRIPTION_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
RESPONSE_404 = {404: described("No subscription with this id in the caller's project"), **RESPONSE_422}
SubscriptionId = Annotated[str, Path(description="The subscription id (`whsub_...`).")]
CallerPrincipal = Annotated[Principal, Depends(require_principal)]


class SubscriptionCreate(BaseModel):
    url: str
    events: list[str]
    secret: str
    agent_id: str | None = None
    enabled: bool = True


class Subscription(BaseModel):
    id: str
    agent_id: str | None
    url: str
    events: list[str]
    enabled: bool
    secret_version: int
    created_at: str
    updated_at: str


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]
    has_more: bool
    response_metadata: ResponseMetadata


REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SubscriptionCreate.model_json_schema()}},
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Subscription,
    responses={**RESPONSE_401, **RESPONSES_BODY},
    openapi_extra=REQUEST_BODY,
    operation_id="createWebhookSubscription",
    summary="Subscribe a URL to session (and call) events",
)
async def create_subscription(request: Request, principal: CallerPrincipal) -> JSONResponse:
    data = await read_json_object(request)
    fields = await _fields(request, principal, data, partial=False)
    record = await _store(request).webhooks.create(principal.project_id, fields)
    return JSONResponse(record, status_code=201)


@router.get(
    "",
    response_model=SubscriptionList,
    responses={**RESPONSE_401, **RESPONSE_422},
    operation_id="listWebhookSubscriptions",
    summary="List webhook subscriptions, newest first (cursor paging)",
)
async def list_subscriptions(
    request: Request, principal: CallerPrincipal, page: Annotated[PageQuery, Depends()]
) -> JSONResponse:
    subscriptions = await _store(request).webhooks.list(principal.project_id, page.request)
    return JSONResponse(list_body("subscriptions", subscriptions))


@router.get(
    "/{subscription_id}",
    response_model=Subscription,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="getWebhookSubscription",
    summary="Retrieve a webhook subscription",
)
async def get_subscription(
    request: Request, principal: CallerPrincipal, subscription_id: SubscriptionId
) -> JSONResponse:
    _check_id(subscription_id)
    record = await _store(request).webhooks.get(principal.project_id, subscription_id)
    if record is None:
        raise _not_found()
    return JSONResponse(record)


async def update_subscription(
    request: Request, principal: CallerPrincipal, subscription_id: SubscriptionId
) -> JSONResponse:
    _check_id(subscription_id)
    store = _store(request)
    if await store.webhooks.get(principal.project_id, subscription_id) is None:
        raise _not_found()
    data = await read_json_object(request)
    fields = await _fields(request, principal, data, partial=True)
    record = await store.webhooks.update(principal.project_id, subscription_id, fields)
    if record is None:
        raise _not_found()
    return JSONResponse(record)


for _method, _operation in (("PATCH", "updateWebhookSubscription"), ("PUT", "replaceWebhookSubscription")):
    router.add_api_route(
        "/{subscription_id}",
        update_subscription,
        methods=[_method],
        response_model=Subscription,
        responses={**RESPONSE_401, **RESPONSE_404, **RESPONSES_BODY},
        openapi_extra=REQUEST_BODY,
        operation_id=_operation,
        summary="Update a webhook subscription (send only what changes; a new secret is rotated)",
    )


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses={**RESPONSE_401, **RESPONSE_404},
    operation_id="deleteWebhookSubscription",
    summary="Delete a webhook subscription",
)
async def delete_subscription(
    request: Request, principal: CallerPrincipal, subscription_id: SubscriptionId
) -> Response:
    _check_id(subscription_id)
    if not await _store(request).webhooks.delete(principal.project_id, subscription_id):
        raise _not_found()
    return Response(status_code=204)


# --- validation -----------------------------------------------------------------------------------------
async def _fields(request: Request, principal: Principal, data: Any, *, partial: bool) -> SubscriptionFields:
    if not isinstance(data, dict):
        raise validation_failed([(("body",), "the body must be a JSON object", "model_type")])
    problems: list[tuple[tuple[str, ...], str, str]] = []
    policy = OutboundPolicy.allowing(request.app.state.settings.http_tools_allowed_hosts)
    values: dict[str, Any] = {}
    checks = {
        "url": lambda value: url_problem(value, policy),
        "events": events_problem,
        "secret": secret_problem,
        "enabled": lambda value: None if isinstance(value, bool) else "enabled must be true or false",
    }
    for name, check in checks.items():
        if name not in data:
            if not partial and name != "enabled":
                problems.append((("body", name), "Field required", "missing"))
            continue
        if (problem := check(data[name])) is not None:
            problems.append((("body", name), problem, "value_error"))
        else:
            values[name] = data[name]
    if "agent_id" in data:
        agent_id = data["agent_id"]
        if agent_id is not None and (
            not isinstance(agent_id, str)
            or await _store(request).agents.get(principal.project_id, agent_id) is None
        ):
            problems.append((("body", "agent_id"), "no agent with this id in the project", "value_error"))
        else:
            values["agent_id"] = agent_id
    if problems:
        raise validation_failed(problems)
    if "events" in values:
        values["events"] = list(dict.fromkeys(values["events"]))
    if not partial:
        values.setdefault("agent_id", None)
    return SubscriptionFields(
        **{key: values.get(key, UNSET) for key in SubscriptionFields.__dataclass_fields__}
    )


def _store(request: Request) -> Store:
    return request.app.state.store


def _check_id(subscription_id: str) -> None:
    if not SUBSCRIPTION_ID_PATTERN.fullmatch(subscription_id):
        raise _not_found()


def _not_found() -> ApiError:
    return ApiError(404, {"detail": "Webhook subscription not found", "code": "subscription_not_found"})
