"""The one error body of the API, and the table mapping application errors to statuses.

Every error (unknown route, 405, 422, 413, 429, domain errors, unhandled 500s)
leaves the service as:
{"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import EmulatedDBAPIException, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route

from app.kernel.clock import utcnow
from app.kernel.errors import (
    ApplicationError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from app.kernel.request_context import current_request_id
from app.persistence.failures import DatabaseFailure, database_failure

log = logging.getLogger("app.errors")

# scope["state"] key where outer middlewares leave the headers every response must carry.
# Unhandled-error 500s are sent by Starlette's ServerErrorMiddleware, outside every
# middleware's send wrapper, so their handler adds these headers itself.
EDGE_HEADERS_STATE = "edge_response_headers"

STATUS_BY_ERROR: dict[type[ApplicationError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDeniedError: 403,
    AuthenticationError: 401,
    InvalidInputError: 422,
}


class ErrorBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status_code: int = Field(alias="statusCode", examples=[404])
    message: str = Field(examples=["Project not found"])
    error: str = Field(examples=["Not Found"], description="HTTP reason phrase")
    details: dict[str, list[str]] = Field(default_factory=dict, description="field -> messages")
    timestamp: str
    path: str
    request_id: str | None = Field(alias="requestId")


def error_body(
    status: int, message: str, path: str, details: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "message": message,
        "error": HTTPStatus(status).phrase,
        "details": details or {},
        "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
        "path": path,
        "requestId": current_request_id(),
    }


def error_response(
    request: Request | None,
    status: int,
    message: str,
    details: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    path: str | None = None,
) -> JSONResponse:
    path = path if path is not None else (request.url.path if request else "")
    return JSONResponse(error_body(status, message, path, details), status_code=status, headers=headers)


# Every route can answer these whatever it does: 400 (a Host not in TRUSTED_HOSTS, a body that
# is not UTF-8 JSON), 413 (a body over MAX_BODY_BYTES, even on a GET) and 500.
_ANY_ROUTE_STATUSES = (400, 413, 500)
# Every route that reaches the database these too: 503 (unavailable) and 507 (storage full).
_DATABASE_STATUSES = (503, 507)
# A 422 lists at most this many fields (the body of a request with thousands of unknown
# fields would otherwise echo every one of them).
MAX_ERROR_DETAILS = 20


def error_responses(*statuses: int, database: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries: the errors a route can return, plus _ANY_ROUTE_STATUSES
    (and _DATABASE_STATUSES unless the route never touches the database)."""
    implied = (*_ANY_ROUTE_STATUSES, *(_DATABASE_STATUSES if database else ()))
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in sorted({*statuses, *implied})
    }


def _status_for(exc: ApplicationError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500  # an application error nobody mapped is our bug, not the client's


def _validation_details(exc: RequestValidationError) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
        key = ".".join(loc) or "body"
        message = "unknown field" if error.get("type") == "extra_forbidden" else str(error.get("msg"))
        if key not in details and len(details) == MAX_ERROR_DETAILS:
            details["_truncated"] = ["more fields failed validation: fix these first"]
            break
        details.setdefault(key, []).append(message)
    return details


async def _application_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApplicationError)
    status = _status_for(exc)
    if status >= 500:
        log.error("application error", extra={"error_code": exc.code})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(request, status, exc.message, exc.details, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, "Request validation failed", _validation_details(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(request, exc.status_code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to (RFC 9110 15.5.6), not only the first route's.

    Each route here serves one method, and Starlette's 405 lists the methods of the first
    route whose path matched: OPTIONS /api/v1/projects said "Allow: POST" (found by fuzzing).
    """
    methods: set[str] = set()
    for route in plain_routes(request.app.router.routes):
        if route.path_regex.match(request.url.path) and route.methods:
            methods |= route.methods
    return ", ".join(sorted(methods))


def plain_routes(routes: list[BaseRoute]) -> list[Route]:
    """Every route, with those of included routers (FastAPI keeps each router as one entry,
    included without a prefix of its own here) in their place."""
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Route):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found += plain_routes(included.routes)
    return found


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    # The stack trace goes to the log, never to the client.
    log.error("unhandled error", exc_info=exc)
    # The server closes the connection after an unhandled error: say so, so a keep-alive
    # client does not send its next request into a closing socket.
    response = error_response(request, 500, "Internal server error", headers={"Connection": "close"})
    if request_id := current_request_id():
        response.headers["X-Request-ID"] = request_id
    for name, value in request.scope.get("state", {}).get(EDGE_HEADERS_STATE, ()):
        response.headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return response


# A database that cannot serve now: the client may retry (an Idempotency-Key makes a retried
# create safe whatever happened to the first attempt). Messages say nothing about internals.
DATABASE_FAILURE_RESPONSES = {
    DatabaseFailure.UNAVAILABLE: (503, "Service unavailable: retry later"),
    DatabaseFailure.STORAGE_FULL: (507, "Insufficient storage: the change was not saved"),
}
DATABASE_RETRY_AFTER_SECONDS = 2
# Errors that may mean the database is gone rather than a bug (checked by database_failure).
_DATABASE_ERRORS = (
    SQLAlchemyError,
    # The driver's errors as SQLAlchemy's asyncpg adapter raises them where no Connection wraps
    # them (the read model's checkout: a server still starting up refuses with 57P03).
    EmulatedDBAPIException,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    failure = database_failure(exc)
    if failure is None:
        return await _unhandled_error(request, exc)
    # Expected while the database is down or full: one line per request, no stack trace
    # (readiness and the database's own alerts say why; 2 x 11 KB per request would flood the log).
    log.warning(
        "database cannot serve the request", extra={"failure": failure.value, "error": type(exc).__name__}
    )
    status, message = DATABASE_FAILURE_RESPONSES[failure]
    return error_response(
        request, status, message, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApplicationError, _application_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Handled inside the app (not by the outermost Exception handler), so the answer keeps the
    # keep-alive connection open instead of resetting the client's next request on it.
    for error in _DATABASE_ERRORS:
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unhandled_error)
