"""Fakes of the one REST call botdock makes per phone call, hanging it up, each a real HTTP
server on loopback checking credentials as the provider does:

- Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, form `Status=completed`,
  HTTP Basic (account SID, auth token); 200 with the call, 401 (error 20003), 404 (20404).
- Telnyx: `POST /v2/calls/{call_control_id}/actions/hangup`, `Authorization: Bearer <API key>`;
  200 `{"data": {"result": "ok"}}`, 401, 404.
- Plivo: `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/`, HTTP Basic (auth id, auth token);
  204, 401, 404.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.loopback_http import LoopbackHttpServer


class FakePhoneApis(LoopbackHttpServer):
    """`with FakePhoneApis() as apis:` serves `apis.url`; `apis.hang_ups` lists
    `(provider, call id)` for each authenticated hang-up, `apis.refused` each refused one."""

    def __init__(self) -> None:
        self.twilio_sid = "AC" + secrets.token_hex(16)
        self.twilio_token = secrets.token_hex(16)
        self.telnyx_key = "KEY" + secrets.token_hex(16)
        self.plivo_id = "MA" + secrets.token_hex(9).upper()
        self.plivo_token = secrets.token_hex(20)
        self.live_calls: set[str] = set()  # calls that exist; others get 404
        self.hang_ups: list[tuple[str, str]] = []
        self.refused: list[tuple[str, int]] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        def basic(user: str, password: str) -> str:
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        twilio = re.compile(
            r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Calls/(?P<call>[^/]+)\.json$"
        )
        telnyx = re.compile(r"^/v2/calls/(?P<call>[^/]+)/actions/hangup$")
        plivo = re.compile(r"^/v1/Account/(?P<account>[^/]+)/Call/(?P<call>[^/]+)/$")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                auth = self.headers.get("Authorization")
                if match := twilio.match(self.path):
                    if auth != basic(api.twilio_sid, api.twilio_token):
                        return self._refuse("twilio", 401, {"code": 20003, "status": 401})
                    if match["account"] != api.twilio_sid or match["call"] not in api.live_calls:
                        return self._refuse("twilio", 404, {"code": 20404, "status": 404})
                    if parse_qs(body).get("Status") != ["completed"]:
                        return self._refuse("twilio", 400, {"code": 21218, "status": 400})
                    return self._done("twilio", match["call"], 200, {"sid": match["call"]})
                if match := telnyx.match(self.path):
                    if auth != f"Bearer {api.telnyx_key}":
                        return self._refuse("telnyx", 401, {"errors": [{"code": "10009"}]})
                    if match["call"] not in api.live_calls:
                        return self._refuse("telnyx", 404, {"errors": [{"code": "10005"}]})
                    return self._done("telnyx", match["call"], 200, {"data": {"result": "ok"}})
                self._answer(404, {"error": "not found"})

            def do_DELETE(self) -> None:
                auth = self.headers.get("Authorization")
                match = plivo.match(self.path)
                if match is None:
                    return self._answer(404, {"error": "not found"})
                if auth != basic(api.plivo_id, api.plivo_token):
                    return self._refuse("plivo", 401, {"error": "authentication failed"})
                if match["account"] != api.plivo_id or match["call"] not in api.live_calls:
                    return self._refuse("plivo", 404, {"error": "not found"})
                self._done("plivo", match["call"], 204, None)

            def _refuse(self, provider: str, status: int, body: dict[str, Any]) -> None:
                api.refused.append((provider, status))
                self._answer(status, body)

            def _done(self, provider: str, call: str, status: int, body: Any) -> None:
                api.hang_ups.append((provider, call))
                api.live_calls.discard(call)
                self._answer(status, body)

            def _answer(self, status: int, body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
