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
