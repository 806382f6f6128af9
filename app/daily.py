"""Daily's REST API: a room and its meeting tokens for a session that brought no room.

`DailyClient` is made in the app's lifespan when `DAILY_API_KEY` is set (`Services.daily`)
and closed on shutdown. It makes three calls per session: `POST /rooms` (private, with `exp`
always set), then `POST /meeting-tokens` twice, concurrently: an owner token for the bot and
a participant token for the caller.

Every failure is a `DailyError` that names the cause: an `UpstreamError` when Daily answers
an error or garbage or cannot be reached, an `UpstreamTimeout` (`DailyTimeout`) when it does
not answer in time. Neither the key nor a token ever appears in an error or a log line. What
a caller may ask of a room is checked before this client is called (`app.room_options`).

Retries: only a request that is safe to send twice is retried, once. A request whose
connection could not be opened (refused, name not found) never reached Daily, so any request
is retried after that. Room creation is not idempotent (a room that Daily created before the
connection broke would be created again, and Daily names rooms itself), so it is retried
after nothing else. A meeting token is a signed JWT that Daily does not store, so a token
request is also retried after a broken connection or a 5xx answer. Nothing is retried after
a timeout: the time left is better spent answering.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loguru import logger

from app import __version__
from app.config import Settings
from app.exceptions import UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    import httpx

# httpx is imported where the client is made, not here: it adds about 0.2 s to the start-up
# of a service that has no DAILY_API_KEY (docs/benchmarks.md, cold start).

_MAX_ATTEMPTS = 2
_RETRY_DELAY_SECS = 0.2
_INFO_LIMIT = 200


class DailyError(UpstreamError):
    """Daily gave no room or token. `reason` is extra context for the log only."""

    def __init__(
        self, code: str, detail: str, *, retry_after: str | None = None, reason: str = ""
    ) -> None:
        super().__init__(code, detail, retry_after=retry_after)
        self.reason = reason


class DailyTimeout(DailyError, UpstreamTimeout):
    """Daily did not answer in time."""


@dataclass(frozen=True)
class DailyRoom:
    name: str
    url: str


@dataclass(frozen=True)
class SessionRoom:
    """A room created for one session. The bot joins with `bot_token` (owner); the caller
    with `caller_token` (participant), or None when nobody is there to receive it."""

    url: str
    name: str
    exp: int
    bot_token: str = field(repr=False)
    caller_token: str | None = field(default=None, repr=False)


def room_name(room_url: str) -> str:
    """The room's name in its URL (`https://<domain>.daily.co/<name>`); "" when none."""
    return urlsplit(room_url).path.strip("/").rsplit("/", 1)[-1]


def _capped_exp(props: dict[str, Any], exp: int) -> int:
    asked = props.get("exp")
    return exp if asked is None else min(int(asked), exp)


class DailyClient:
    """Async client for the few Daily REST calls a session needs."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        connect_timeout_secs: float = 5,
        read_timeout_secs: float = 10,
        start_timeout_secs: float = 20,
        room_expiry_secs: int | None = None,
    ) -> None:
        self._key = api_key
        self._base = api_url.rstrip("/")
        self._connect_timeout = connect_timeout_secs
        self._read_timeout = read_timeout_secs
        self._start_timeout = start_timeout_secs
        self._room_expiry = room_expiry_secs
        import httpx

        self._http = httpx.AsyncClient(
            base_url=self._base + "/",
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"botdock/{__version__}",
            },
            timeout=httpx.Timeout(
                connect=connect_timeout_secs,
                read=read_timeout_secs,
                write=read_timeout_secs,
                pool=connect_timeout_secs,
            ),
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DailyClient | None:
        """The client, or None when `DAILY_API_KEY` is unset."""
        if settings.daily_api_key is None:
            return None
        return cls(
            settings.daily_api_url,
            settings.daily_api_key.get_secret_value().strip(),
            connect_timeout_secs=settings.daily_connect_timeout_secs,
            read_timeout_secs=settings.daily_read_timeout_secs,
            start_timeout_secs=settings.daily_start_timeout_secs,
            room_expiry_secs=settings.daily_room_expiry_secs,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- one session's room ----------------------------------------------------------------

    async def create_session_room(
        self,
        room_properties: dict[str, Any],
        caller_token_properties: dict[str, Any] | None,
        *,
        limit_secs: float,
    ) -> SessionRoom:
        """Create a room and its tokens, all within `DAILY_START_TIMEOUT_SECS`: an owner token
        for the bot and, unless `caller_token_properties` is None, a participant token for
        the caller. The room expires after `DAILY_ROOM_EXPIRY_SECS`, by default the session's
        own time limit; the tokens never outlive it."""
        expiry = self._room_expiry if self._room_expiry is not None else limit_secs
        exp = math.ceil(time.time() + expiry)
        try:
            async with asyncio.timeout(self._start_timeout) as deadline:
                created = await self._create(room_properties, caller_token_properties, exp)
        except TimeoutError:
            if not deadline.expired():
                raise
            error = DailyTimeout(
                "daily_timeout",
                "creating the Daily room and its tokens took longer than "
                f"{_fmt(self._start_timeout)}s (DAILY_START_TIMEOUT_SECS)",
            )
            self._log_failure(error)
            raise error from None
        except DailyError as error:
            self._log_failure(error)
            raise
        expires = datetime.fromtimestamp(created.exp, UTC).isoformat(timespec="seconds")
        logger.info("Daily room {} created; it expires at {}", created.name, expires)
        return created

    async def create_caller_token(
        self, room_url: str, token_properties: dict[str, Any], *, limit_secs: float
    ) -> str:
        """A participant (non-owner) token for a room the caller brought, within
        `DAILY_START_TIMEOUT_SECS`; it expires with the session's time limit at the latest."""
        exp = math.ceil(time.time() + limit_secs)
        props = {
            **token_properties,
            "room_name": room_name(room_url),
            "is_owner": False,
            "exp": _capped_exp(token_properties, exp),
        }
        try:
            async with asyncio.timeout(self._start_timeout) as deadline:
                return await self.create_meeting_token(props)
        except TimeoutError:
            if not deadline.expired():
                raise
            error = DailyTimeout(
                "daily_timeout",
                "creating the caller's Daily meeting token took longer than "
                f"{_fmt(self._start_timeout)}s (DAILY_START_TIMEOUT_SECS)",
            )
            self._log_token_failure(error)
            raise error from None
        except DailyError as error:
            self._log_token_failure(error)
            raise

    def _log_token_failure(self, error: DailyError) -> None:
        reason = f" [{error.reason}]" if error.reason else ""
        logger.warning(
            "caller's Daily token not created: {} {}{}", error.code, error.detail, reason
        )

    async def _create(
        self,
        room_properties: dict[str, Any],
        caller_token_properties: dict[str, Any] | None,
        exp: int,
    ) -> SessionRoom:
        room_props = dict(room_properties)
        room_props["exp"] = exp = _capped_exp(room_props, exp)
        room_props.setdefault("eject_at_room_exp", True)
        room = await self.create_room({"privacy": "private", "properties": room_props})
        bot_props = {"room_name": room.name, "is_owner": True, "exp": exp}
        if caller_token_properties is None:
            return SessionRoom(room.url, room.name, exp, await self.create_meeting_token(bot_props))
        caller_props = {
            **caller_token_properties,
            "room_name": room.name,
            "is_owner": False,
            "exp": _capped_exp(caller_token_properties, exp),
        }
        try:
            async with asyncio.TaskGroup() as group:
                bot = group.create_task(self.create_meeting_token(bot_props))
                caller = group.create_task(self.create_meeting_token(caller_props))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return SessionRoom(room.url, room.name, exp, bot.result(), caller.result())

    def _log_failure(self, error: DailyError) -> None:
        reason = f" [{error.reason}]" if error.reason else ""
        logger.warning("Daily room not created: {} {}{}", error.code, error.detail, reason)

    # -- the REST calls --------------------------------------------------------------------

    async def create_room(self, body: dict[str, Any]) -> DailyRoom:
        """`POST /rooms`. Not retried once the request may have reached Daily."""
        data = await self._post("rooms", body, repeatable=False)
        name, url = data.get("name"), data.get("url")
        if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
            raise self._bad_response("POST /rooms", "without the room's name and url")
        return DailyRoom(name, url)

    async def create_meeting_token(self, properties: dict[str, Any]) -> str:
        """`POST /meeting-tokens`. Safe to repeat: Daily keeps no state for a token."""
        data = await self._post("meeting-tokens", {"properties": properties}, repeatable=True)
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise self._bad_response("POST /meeting-tokens", "without a token")
        return token

    async def _post(self, path: str, body: dict[str, Any], *, repeatable: bool) -> dict[str, Any]:
        import httpx

        what = f"POST /{path}"
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            again = attempt < _MAX_ATTEMPTS
            try:
                response = await self._http.post(path, json=body)
            except httpx.TimeoutException as exc:
                raise self._timeout(exc, what) from None
            except httpx.DecodingError as exc:
                raise self._bad_response(what, "that cannot be decoded", exc) from None
            except httpx.HTTPError as exc:
                if again and (repeatable or _never_sent(exc)):
                    await asyncio.sleep(_RETRY_DELAY_SECS)
                    continue
                raise self._unreachable(exc, what) from None
            if response.status_code >= 500 and repeatable and again:
                await asyncio.sleep(_RETRY_DELAY_SECS)
                continue
            return self._parse(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- turning answers into data or errors -----------------------------------------------

    def _parse(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError:
                raise self._bad_response(what, "that is not JSON") from None
            if not isinstance(data, dict):
                raise self._bad_response(what, "that is not a JSON object")
            return data
        says = self._daily_says(response)
        where = f"HTTP {status} on {what}{says}"
        if status == 401:
            raise DailyError("daily_unauthorized", f"Daily rejected DAILY_API_KEY: {where}")
        if status == 403:
            raise DailyError("daily_forbidden", f"Daily refused access for DAILY_API_KEY: {where}")
        if status == 429:
            retry_after = response.headers.get("retry-after", "").strip()
            raise DailyError(
                "daily_rate_limited",
                f"Daily is rate-limiting DAILY_API_KEY, retry later: {where}",
                retry_after=retry_after if _header_safe(retry_after) else None,
            )
        if status >= 500:
            raise DailyError("daily_server_error", f"Daily failed: {where}")
        raise DailyError("daily_error", f"Daily refused the request: {where}")

    def _daily_says(self, response: httpx.Response) -> str:
        """Daily's own `error` and `info` (`{"error": ..., "info": ...}`), cleaned and short."""
        try:
            data = response.json()
        except ValueError:
            return ""
        if not isinstance(data, dict):
            return ""
        parts = [self._clean(data.get(k)) for k in ("error", "info")]
        text = ": ".join(p for p in parts if p)
        return f" ({text})" if text else ""

    def _clean(self, value: Any) -> str:
        if not isinstance(value, str):
            return ""
        text = "".join(ch if ch.isprintable() else " " for ch in value).strip()
        if self._key:
            text = text.replace(self._key, "***")
        return text[:_INFO_LIMIT] + ("…" if len(text) > _INFO_LIMIT else "")

    def _bad_response(self, what: str, problem: str, exc: Exception | None = None) -> DailyError:
        return DailyError(
            "daily_bad_response",
            f"Daily answered {what} with a body {problem}",
            reason=self._reason(exc) if exc else "",
        )

    def _timeout(self, exc: httpx.TimeoutException, what: str) -> DailyTimeout:
        import httpx

        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            detail = (
                f"could not connect to the Daily API at {self._base} within "
                f"{_fmt(self._connect_timeout)}s (DAILY_CONNECT_TIMEOUT_SECS)"
            )
        else:
            detail = (
                f"Daily did not answer {what} within {_fmt(self._read_timeout)}s "
                "(DAILY_READ_TIMEOUT_SECS)"
            )
        return DailyTimeout("daily_timeout", detail, reason=self._reason(exc))

    def _unreachable(self, exc: httpx.HTTPError, what: str) -> DailyError:
        if _never_sent(exc):
            detail = f"could not connect to the Daily API at {self._base} (DAILY_API_URL)"
        else:
            detail = f"the connection to the Daily API at {self._base} broke during {what}"
        return DailyError("daily_unreachable", detail, reason=self._reason(exc))

    def _reason(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {self._clean(str(exc))}".rstrip(": ")


def _never_sent(exc: Exception) -> bool:
    """The connection was refused or not found, so the request cannot have reached Daily."""
    import httpx

    return isinstance(exc, httpx.ConnectError)


def _header_safe(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and value.isprintable()


def _fmt(value: float) -> str:
    return f"{value:g}"
