"""REST error bodies and the exception handlers that produce them (PROTOCOL.md §3.6).

Every error body has ``detail``. The bodies the spec fixes are returned exactly:
``{"detail": "Missing authorization header"}``, ``{"detail": "Unauthorized"}`` (401) and
``{"detail": "Agent not found"}`` (404). All other errors (400, 404 route, 405, 413, 422, 500) also carry
``code`` and ``message`` (the later server's shape), and 422 adds ``param`` and ``errors`` while keeping
the FastAPI-style ``detail`` list of ``{"loc", "msg", "type"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

MISSING_AUTHORIZATION = "Missing authorization header"
UNAUTHORIZED = "Unauthorized"
AGENT_NOT_FOUND = "Agent not found"


class ApiError(Exception):
    """Raise from an endpoint to answer with ``status_code`` and ``body``."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {body}")
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status_code, headers=self.headers)


# --- response schemas (documented in OpenAPI) ------------------------------------------------------
class ErrorResponse(BaseModel):
    """An error. ``code``/``message`` are present on every error except the three fixed-body ones."""

    detail: str
    code: str | None = None
    message: str | None = None


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorParam(BaseModel):
    message: str
    param: str


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationErrorItem]
    code: str
    message: str
    param: str
    errors: list[ErrorParam]


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
    return {"detail": message, "code": code, "message": message}


def missing_authorization() -> ApiError:
    return ApiError(401, {"detail": MISSING_AUTHORIZATION})


def unauthorized() -> ApiError:
    return ApiError(401, {"detail": UNAUTHORIZED})


def agent_not_found() -> ApiError:
    return ApiError(404, {"detail": AGENT_NOT_FOUND})


def malformed_json(reason: str) -> ApiError:
    return ApiError(400, error_body("INVALID_REQUEST", f"Malformed JSON body: {reason}"))


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, error_body("PAYLOAD_TOO_LARGE", f"Request body exceeds the limit of {limit} bytes"))


def validation_failed(items: Iterable[tuple[Sequence[str | int], str, str]]) -> ApiError:
    """422 from ``(loc, msg, type)`` triples; ``loc`` starts with ``body``/``query``/``path``."""
    detail = [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in items]
    errors = [{"message": item["msg"], "param": _param(item["loc"])} for item in detail]
    first = errors[0] if errors else {"message": "Validation failed", "param": ""}
    message = f"{first['param']}: {first['message']}" if first["param"] else first["message"]
    return ApiError(
        422,
        {
            "detail": detail,
            "code": "VALIDATION_ERROR",
            "message": message,
            "param": first["param"],
            "errors": errors,
        },
    )


def from_pydantic(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> ApiError:
    return validation_failed(((*prefix, *e["loc"]), e["msg"], e["type"]) for e in exc.errors())


def _param(loc: Sequence[str | int]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    return ".".join(str(part) for part in parts)


# --- handlers -------------------------------------------------------------------------------------
_STATUS_CODES = {
    400: "INVALID_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "ERROR")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "Not found"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = (
        (tuple(e.get("loc", ())), str(e.get("msg", "invalid")), str(e.get("type", ""))) for e in exc.errors()
    )
    return validation_failed(items).response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal server error"), status_code=500)


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
    return JSONResponse(
        error_body("UNAVAILABLE", "Database unavailable; retry shortly"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ConnectionError, _store_unavailable)
    app.add_exception_handler(TimeoutError, _store_unavailable)
    app.add_exception_handler(DBAPIError, _store_unavailable)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
