"""Hanging a call up through its provider's REST API once its session has ended (for any
reason), when that provider's REST credentials are set. Base URLs are settings (the real hosts
by default), so tests reach fakes on loopback.

- Twilio: `POST {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Calls/{CallSid}.json` with
  `Status=completed`, HTTP Basic (account SID, auth token).
- Telnyx: `POST {TELNYX_API_URL}/v2/calls/{call_control_id}/actions/hangup`, bearer API key.
- Plivo: `DELETE {PLIVO_API_URL}/v1/Account/{auth_id}/Call/{CallUUID}/`, HTTP Basic (auth id,
  auth token).
- Exotel: no call; the Voicebot applet ends when its stream closes, and the flow moves on to
  its next applet (a Hangup applet).

A failure is logged, never raised: the session is over either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from loguru import logger

from app.config import Settings

if TYPE_CHECKING:
    import httpx


class PhoneHangup:
    def __init__(self, settings: Settings, timeout_secs: float = 5.0) -> None:
        self._settings = settings
        self._timeout = timeout_secs
        self._client: httpx.AsyncClient | None = None

    def configured(self, provider: str) -> bool:
        s = self._settings
        return {
            "twilio": s.twilio_account_sid is not None and s.twilio_auth_token is not None,
            "telnyx": s.telnyx_api_key is not None,
            "plivo": s.plivo_auth_id is not None and s.plivo_auth_token is not None,
        }.get(provider, False)

    async def hang_up(self, provider: str, call_id: str) -> None:
        if not self.configured(provider):
            return
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        s = self._settings
        call = quote(call_id, safe=":")
        try:
            if provider == "twilio":
                assert s.twilio_account_sid is not None and s.twilio_auth_token is not None
                account = quote(s.twilio_account_sid, safe="")
                response = await self._client.post(
                    f"{s.twilio_api_url}/2010-04-01/Accounts/{account}/Calls/{call}.json",
                    data={"Status": "completed"},
                    auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()),
                )
            elif provider == "telnyx":
                assert s.telnyx_api_key is not None
                response = await self._client.post(
                    f"{s.telnyx_api_url}/v2/calls/{call}/actions/hangup",
                    json={},
                    headers={"Authorization": f"Bearer {s.telnyx_api_key.get_secret_value()}"},
                )
            else:
                assert s.plivo_auth_id is not None and s.plivo_auth_token is not None
                account = quote(s.plivo_auth_id, safe="")
                response = await self._client.delete(
                    f"{s.plivo_api_url}/v1/Account/{account}/Call/{call}/",
                    auth=(s.plivo_auth_id, s.plivo_auth_token.get_secret_value()),
                )
        except httpx.HTTPError as exc:
            logger.warning("{} hang-up failed: {}", provider, type(exc).__name__)
            return
        status = response.status_code
        if response.is_success:
            logger.info("{} call hung up through its REST API", provider)
        elif status in (401, 403):
            logger.warning("{} hang-up refused: HTTP {} (check the credentials)", provider, status)
        elif status == 404:
            logger.info("{} call already ended (its REST API answered 404)", provider)
        else:  # Twilio answers 400 for a call that is no longer in progress, for example
            logger.info("{} hang-up answered HTTP {} (the call had likely ended)", provider, status)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
