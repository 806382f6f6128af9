"""A fake of the one Twilio REST call a bot makes when it ends a call: updating the Call
resource to `Status=completed` (`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`,
form-encoded, HTTP Basic auth with the account SID and auth token). It answers as Twilio's
docs say: 200 with the Call resource, 401 with error 20003 for bad credentials, 404 with
error 20404 for a path that names no call. A real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import re
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.loopback_http import LoopbackHttpServer

_CALL = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Calls/(?P<call>[\w-]+)\.json$")


class FakeTwilioApi(LoopbackHttpServer):
    """`with FakeTwilioApi() as twilio:` serves on `twilio.url`; `twilio.hang_ups` lists the
    (call SID, form fields) of each authenticated call update."""

    def __init__(self) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.hang_ups: list[tuple[str, dict[str, list[str]]]] = []
        self.refused: list[int] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                match = _CALL.match(self.path)
                if self.headers.get("Authorization") != expected:
                    api.refused.append(401)
                    self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
                elif match is None or match["account"] != api.account_sid:
                    api.refused.append(404)
                    self._answer(
                        404,
                        {
                            "code": 20404,
                            "message": "The requested resource was not found",
                            "status": 404,
                        },
                    )
                else:
                    api.hang_ups.append((match["call"], form))
                    status = form.get("Status", ["in-progress"])[0]
                    self._answer(
                        200,
                        {"sid": match["call"], "account_sid": api.account_sid, "status": status},
                    )

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
