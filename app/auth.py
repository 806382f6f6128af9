"""`API_KEY`: when set, session and session-management routes need `Authorization: Bearer
<key>` (a WebSocket may send `?token=<key>` instead, since browsers cannot set headers)."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from app.errors import ApiError
from app.payloads import header
from app.state import services


def presented_key(conn: HTTPConnection) -> str | None:
    authorization = header(conn, b"authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return conn.query_params.get("token") if conn.scope["type"] == "websocket" else None


def check_api_key(conn: HTTPConnection) -> None:
    """Raise 401 unless the connection carries the configured key. Compared in constant time;
    the key never appears in the error."""
    svc = services(conn)
    expected = svc.settings.api_key
    if expected is None:
        return
    given = presented_key(conn)
    if given is None or not hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        svc.manager.count_unauthorized()
        detail = (
            "missing API key: send Authorization: Bearer <API_KEY>"
            if given is None
            else "invalid API key"
        )
        raise ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def require_api_key(conn: HTTPConnection) -> None:
    """FastAPI dependency form of `check_api_key` for HTTP routes."""
    check_api_key(conn)


def check_origin(conn: HTTPConnection) -> None:
    """With `ALLOWED_ORIGINS` set, a browser (which always sends `Origin`) from another origin
    is refused, so a page elsewhere cannot open a session with the user's cookies or network
    position. Clients that send no `Origin` (servers, phone providers) are not browsers."""
    allowed = services(conn).settings.allowed_origins
    origin = conn.headers.get("origin")
    if allowed and origin is not None and origin not in allowed and "*" not in allowed:
        raise ApiError(
            403, "forbidden_origin", f"origin {origin[:100]!r} is not in ALLOWED_ORIGINS"
        )
