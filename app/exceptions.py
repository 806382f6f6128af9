"""Why the service could not do what a caller asked, in the service's own terms.

The session engine, the start flow and the Daily client raise these; none of them knows
HTTP. Each class is a category of failure; `app.errors` maps the categories to HTTP statuses
(and WebSocket close codes) in one table. `code` is a stable machine-readable name, `detail`
one line for the caller that never holds a secret.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every refusal or failure answered to a caller."""

    def __init__(self, code: str, detail: str, *, retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after  # seconds, when trying again later may work


class BadRequest(ServiceError):
    """The request cannot be served as asked (a kind the mode does not serve, half a room)."""


class InvalidRequest(ServiceError):
    """A well-formed request with a value the service does not accept."""


class Unauthorized(ServiceError):
    """The caller did not present what the service or the session requires."""


class NotFound(ServiceError):
    """No such session."""


class Conflict(ServiceError):
    """The session exists already, or is already taken."""


class AtCapacity(ServiceError):
    """Every session slot is in use; a retry shortly may succeed."""


class Unavailable(ServiceError):
    """The service is draining, or the session was ended before it could start."""


class NotInstalled(ServiceError):
    """An optional integration the request needs is not installed (WebRTC without aiortc)."""


class UpstreamError(ServiceError):
    """An external API answered an error or garbage, or could not be reached."""


class UpstreamTimeout(UpstreamError):
    """An external API did not answer in time."""


class SessionFailure(Exception):
    """A session ended in failure somewhere the session manager cannot see the exception (a
    worker process): `reason` is the session's end reason; `logged` says the failure (with
    its traceback) is already in the log."""

    def __init__(self, reason: str, *, logged: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.logged = logged


class ClientGone(Exception):
    """The session's client went away (a WebSocket closed by its client while a worker ran
    the bot): a normal end of the session, not a failure."""
