"""REST error bodies and the exception handlers that produce them (HOSTED.md §1, PROTOCOL.md §3.6).

Every non-2xx answer is one envelope::

    {"code": "agent_not_found", "message": "Agent not found", "param": null,
     "request_id": "req_...", "errors": null, "detail": "Agent not found"}

``code`` is lower-case snake; ``param`` names the offending field (``tools[0].name``) or is null;
``errors`` lists every field problem of a 422 (else null); ``detail`` is the older field, kept with its
documented text (``"Missing authorization header"``, ``"Unauthorized"``, ``"Agent not found"``) or, for
a 422, FastAPI's list of ``{"loc", "msg", "type"}``. ``request_id`` is also the ``X-Request-Id`` header.

Endpoints raise ``ApiError(status, body)`` with a partial body (at least ``detail``); ``envelope``
completes it, so every error leaves in the same shape whoever raised it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxgate.api.request_ids import REQUEST_ID_HEADER, request_id_of
from voxgate.store.paging import InvalidCursor

logger = logging.getLogger(__name__)

MISSING_AUTHORIZATION = "Missing authorization header"
UNAUTHORIZED = "Unauthorized"
AGENT_NOT_FOUND = "Agent not found"

STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_value",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
"""The ``code`` of an error that does not name its own."""


class ApiError(Exception):
    """Raise from an endpoint to answer with ``status_code`` and ``body`` (completed by ``envelope``)."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {body}")
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})

    def response(self, request_id: str) -> JSONResponse:
        headers = {**self.headers, REQUEST_ID_HEADER: request_id}
        return JSONResponse(
            envelope(self.status_code, self.body, request_id), status_code=self.status_code, headers=headers
        )


def envelope(status_code: int, body: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """The full error envelope from a partial body (``detail`` and optionally code, message, param,
    errors). Codes are written lower-case."""
    detail = body.get("detail")
    message = body.get("message") or (detail if isinstance(detail, str) else "Request failed")
    code = body.get("code") or STATUS_CODES.get(status_code, "error")
    return {
        "code": str(code).lower(),
        "message": message,
        "param": body.get("param") or None,
        "request_id": request_id,
        "errors": body.get("errors") or None,
        "detail": detail if detail is not None else message,
    }


# --- response schemas (documented in OpenAPI) ------------------------------------------------------
class ErrorItem(BaseModel):
    message: str
    param: str | None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Lower-case snake: `unauthorized`, `agent_not_found`, `invalid_value`, ...")
    message: str
    param: str | None = Field(description="The offending field (`tools[0].name`), or null.")
    request_id: str = Field(description="`req_...`; also the `X-Request-Id` response header.")
    errors: list[ErrorItem] | None


class ErrorResponse(_Envelope):
    """An error (HOSTED.md §1). ``detail`` is the older field with its documented text."""

    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(_Envelope):
    """A 422: ``errors`` lists every problem; ``detail`` is FastAPI's list of ``{loc, msg, type}``."""

    detail: list[ValidationErrorItem]


def described(description: str, model: type[BaseModel] = ErrorResponse) -> dict[str, Any]:
    return {"model": model, "description": description}


RESPONSE_401 = {401: described("Missing or invalid API key")}
RESPONSE_422 = {422: described("Validation failed", ValidationErrorResponse)}
RESPONSES_BODY = {
    400: described("Malformed JSON"),
    413: described("Request body larger than the configured limit"),
    **RESPONSE_422,
}


# --- error constructors ---------------------------------------------------------------------------
def error_body(code: str, message: str) -> dict[str, Any]:
    return {"detail": message, "code": code.lower(), "message": message}


def missing_authorization() -> ApiError:
    return ApiError(401, {"detail": MISSING_AUTHORIZATION, "code": "missing_authorization"})


def unauthorized() -> ApiError:
    return ApiError(401, {"detail": UNAUTHORIZED, "code": "unauthorized"})


def agent_not_found() -> ApiError:
    return ApiError(404, {"detail": AGENT_NOT_FOUND, "code": "agent_not_found"})


def update_conflict(message: str) -> ApiError:
    return ApiError(409, error_body("conflict", f"{message}; retry the update"), {"Retry-After": "1"})


def malformed_json(reason: str) -> ApiError:
    return ApiError(400, error_body("invalid_request", f"Malformed JSON body: {reason}"))


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, error_body("payload_too_large", f"Request body exceeds the limit of {limit} bytes"))


def validation_failed(items: Iterable[tuple[Sequence[str | int], str, str]]) -> ApiError:
    """422 from ``(loc, msg, type)`` triples; ``loc`` starts with ``body``/``query``/``path``."""
    detail = [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in items]
    errors = [{"message": item["msg"], "param": param_of(item["loc"]) or None} for item in detail]
    first = errors[0] if errors else {"message": "Validation failed", "param": None}
    message = f"{first['param']}: {first['message']}" if first["param"] else first["message"]
    return ApiError(
        422,
        {
            "detail": detail,
            "code": "invalid_value",
            "message": message,
            "param": first["param"],
            "errors": errors,
        },
    )


def from_pydantic(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> ApiError:
    return validation_failed(((*prefix, *e["loc"]), e["msg"], e["type"]) for e in exc.errors())


def param_of(loc: Sequence[str | int]) -> str:
    """``["body", "tools", 0, "name"]`` -> ``tools[0].name`` (the location prefix is dropped)."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# --- handlers -------------------------------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response(request_id_of(request.scope))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "Not found"
    error = ApiError(exc.status_code, {"detail": message}, exc.headers)
    return error.response(request_id_of(request.scope))


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = (
        (tuple(e.get("loc", ())), str(e.get("msg", "invalid")), str(e.get("type", ""))) for e in exc.errors()
    )
    return validation_failed(items).response(request_id_of(request.scope))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request_id_of(request.scope)
    logger.exception(
        "unhandled error on %s %s (%s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return ApiError(500, error_body("internal_error", "Internal server error")).response(request_id)


def is_store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (as opposed to a bug or bad data)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return False


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if not is_store_unavailable(exc):
        return await _unexpected(request, exc)
    logger.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    body = error_body("unavailable", "Database unavailable; retry shortly")
    error = ApiError(503, body, {"Retry-After": "1"})
    return error.response(request_id_of(request.scope))


async def _invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
    """A list's ``cursor`` that is garbage or belongs to another list or project (every list route)."""
    return await _api_error(request, validation_failed([(("query", "cursor"), str(exc), "value_error")]))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ConnectionError, _store_unavailable)
    app.add_exception_handler(TimeoutError, _store_unavailable)
    app.add_exception_handler(DBAPIError, _store_unavailable)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
