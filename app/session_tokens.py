"""Session tokens: the credential a browser holds for one announced session.

`POST /start` (called by the app's backend, with the `API_KEY`) announces a WebSocket session
and answers a token for it; the browser presents that token on `/ws` and needs no `API_KEY`.
A token names its session and its expiry and is signed with a key made at start-up, so
`/ws` can say exactly why a token is refused (forged, another session's, expired) even after
its session has gone. Single use is the session manager's part: a claimed session's token
is spent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from app.exceptions import Unauthorized

_SEPARATOR = "."


class TokenRefused(Unauthorized):
    """A session token that cannot claim the session it is presented for."""


class SessionTokens:
    def __init__(self, ttl_secs: float, *, key: bytes | None = None) -> None:
        self.ttl_secs = ttl_secs
        self._key = key if key is not None else secrets.token_bytes(32)

    def issue(self, session_id: str) -> str:
        """A token for `session_id`, valid for `ttl_secs` from now."""
        expires_ms = int((time.time() + self.ttl_secs) * 1000)
        payload = f"{_b64(session_id.encode())}{_SEPARATOR}{expires_ms}"
        return f"{payload}{_SEPARATOR}{self._sign(payload)}"

    def check(self, token: str | None, session_id: str) -> None:
        """Raise `TokenRefused` unless `token` is a live token of ours for `session_id`."""
        if not token:
            raise TokenRefused(
                "missing_session_token",
                f"session {session_id} needs the token that POST /start answered (?token=)",
            )
        parts = token.split(_SEPARATOR)
        if len(parts) != 3 or not hmac.compare_digest(
            self._sign(f"{parts[0]}{_SEPARATOR}{parts[1]}"), parts[2]
        ):
            raise TokenRefused("invalid_session_token", "the session token is not valid")
        if _unb64(parts[0]) != session_id:
            raise TokenRefused(
                "invalid_session_token",
                f"the session token belongs to another session, not {session_id}",
            )
        overdue = time.time() - int(parts[1]) / 1000
        if overdue >= 0:
            raise TokenRefused(
                "session_token_expired",
                f"the session token expired {overdue:.0f}s ago (SESSION_TOKEN_TTL_SECS is "
                f"{self.ttl_secs:g}s): POST /start again",
            )

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return _b64(digest)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except ValueError:
        return None
