"""One JSON error shape for every 4xx/5xx: `{"error": code, "detail": text}`, and the one
place where the service's own errors (`app.exceptions`) become HTTP statuses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.exceptions import (
    AtCapacity,
    BadRequest,
    Conflict,
    InvalidRequest,
    NotFound,
    NotInstalled,
    ServiceError,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    detail: str


class ApiError(Exception):
    """An error of the HTTP layer itself (a body that is not JSON, a missing key), answered
    to the caller as `{"error": code, "detail": detail}`."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


# Each category of the service's errors and its status; the most specific class wins.
_STATUSES: dict[type[ServiceError], int] = {
    BadRequest: 400,
    InvalidRequest: 422,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    AtCapacity: 429,
    Unavailable: 503,
    NotInstalled: 501,
    UpstreamTimeout: 504,
    UpstreamError: 502,
}


def as_api_error(exc: ApiError | ServiceError) -> ApiError:
    """What the caller gets for an error: its status, code, detail and headers."""
    if isinstance(exc, ApiError):
        return exc
    status = next((_STATUSES[c] for c in type(exc).__mro__ if c in _STATUSES), 500)
    headers = {"Retry-After": exc.retry_after} if exc.retry_after is not None else None
    return ApiError(status, exc.code, exc.detail, headers)


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "at_capacity",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    @app.exception_handler(ServiceError)
    async def on_api_error(request: Request, exc: ApiError | ServiceError) -> JSONResponse:
        error = as_api_error(exc)
        return error_response(error.status, error.code, error.detail, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            422, "invalid_request", describe_validation(exc.errors(), request_part=True)
        )


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    matching route's methods when two routes share a path)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def describe_validation(errors: Any, request_part: bool = False) -> str:
    """Pydantic errors as one line: `field.path: message; ...` without echoing input.
    `request_part`: locations start with FastAPI's `body`/`query`/`header`/`path`."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())]
        if request_part and loc and loc[0] in ("body", "query", "header", "path", "cookie"):
            loc = loc[1:]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
