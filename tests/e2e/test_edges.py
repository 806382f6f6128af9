"""Edges that used to answer wrongly: start-up errors naming HOST/PORT/API_KEY, uvicorn's own
400s in the JSON shape, no Host-built redirects, session ids with a slash, and browser
WebSockets from another origin. End to end, against the real process."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import rawhttp
from tests.helpers import wait_for
from tests.server import run_to_exit


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"API_KEY": "sk-with-a-newline\n"},
            "API_KEY: Value error, must not start or end with whitespace (a trailing newline?)",
        ),
        ({"HOST": "no-such-host.invalid"}, "HOST='no-such-host.invalid' is not an address"),
    ],
)
def test_bad_api_key_or_host_stops_start_up_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    result = run_to_exit(env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "sk-with-a-newline" not in result.stderr


def test_port_in_use_stops_start_up_naming_host_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit({"HOST": "127.0.0.1", "PORT": str(port)})
    assert result.returncode == 2
    assert f"cannot start: cannot listen on HOST='127.0.0.1' PORT={port}: " in result.stderr
    assert "Address already in use" in result.stderr


def test_unparsable_request_gets_the_json_error_shape(server_for: Any) -> None:
    server = server_for()
    status, headers, body = rawhttp.exchange(server.port, b"GET / HTTP/1.1\r\nHost\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert body == {"error": "bad_request", "detail": "invalid HTTP request"}
    assert httpx.get(f"{server.url}/livez").status_code == 200


def test_trailing_slash_never_redirects_to_the_host_header(server_for: Any) -> None:
    server = server_for()
    response = httpx.post(
        f"{server.url}/start/", json={}, headers={"host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"error": "not_found", "detail": "no route POST /start/"}
    assert httpx.get(f"{server.url}/sessions").json() == {"sessions": []}


def test_session_id_with_a_slash_can_be_fetched_and_cancelled(server_for: Any) -> None:
    server = server_for()
    answers: list[httpx.Response] = []

    def call() -> None:
        answers.append(
            httpx.post(
                f"{server.url}/bot",
                json={"sleep": 30},
                headers={"x-daily-session-id": "team/a"},
                timeout=30,
            )
        )

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: httpx.get(f"{server.url}/sessions").json()["sessions"] != [])
    fetched = httpx.get(f"{server.url}/sessions/team%2Fa")
    assert fetched.status_code == 200 and fetched.json()["sessionId"] == "team/a"
    assert httpx.delete(f"{server.url}/sessions/team%2Fa").status_code == 202
    caller.join(10)
    assert answers[0].status_code == 503
    assert answers[0].json()["detail"] == "session team/a was cancelled: cancelled by request"


async def _websocket_outcome(url: str, origin: str | None) -> tuple[int | None, str]:
    headers = {"Origin": origin} if origin else None
    async with connect(url, additional_headers=headers) as ws:
        try:
            return None, json.loads(await asyncio.wait_for(ws.recv(), 5))["class"]
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason


def test_websocket_from_another_origin_is_refused_when_origins_are_set(
    server_for: Any,
) -> None:
    server = server_for({"ALLOWED_ORIGINS": "https://app.example"})
    url = f"{server.ws_url}/ws"
    assert asyncio.run(_websocket_outcome(url, "https://evil.example")) == (
        4403,
        "origin 'https://evil.example' is not in ALLOWED_ORIGINS",
    )
    assert asyncio.run(_websocket_outcome(url, "https://app.example")) == (
        None,
        "WebSocketSessionArguments",
    )
    # A client that sends no Origin (a server, a phone provider) is not a browser.
    assert asyncio.run(_websocket_outcome(url, None)) == (None, "WebSocketSessionArguments")
