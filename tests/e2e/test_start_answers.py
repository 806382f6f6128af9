"""`POST /start` answers exactly what Pipecat's JS client transports accept, honours the
request's `transport`, and its WebSocket token is short-lived, single-use and bound to its
session. Real server, real HTTP and WebSocket clients."""

import asyncio
import contextlib

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import transport_ws_url, wait_for
from tests.server import ServerFactory

ECHO = {"BOT_MODULE": "tests.bots.echo"}
KEY = "backend-key-for-start-tests"


async def refused(url: str) -> tuple[int | None, str | None]:
    async with connect(url) as ws:
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.close_reason


def healthy(url: str) -> None:
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert httpx.get(f"{url}/readyz").status_code == 200


async def test_websocket_start_answers_what_the_transport_accepts(
    server_for: ServerFactory,
) -> None:
    server = server_for({**ECHO, "API_KEY": KEY})
    response = httpx.post(
        f"{server.url}/start",
        json={"transport": "websocket", "body": {"a": 1}},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 201
    session_id = response.headers["x-session-id"]
    assert response.headers["location"] == f"/sessions/{session_id}"
    answer = response.json()
    assert answer == {
        "wsUrl": f"{server.ws_url}/ws?session_id={session_id}",
        "token": answer["token"],
    }
    # The browser holds only the session token, never the API key.
    async with connect(transport_ws_url(answer)) as ws:
        await ws.send(b"\x01\x02audio")
        assert await ws.recv() == b"\x01\x02audio"
        await ws.send("hi")
        assert await ws.recv() == "hi"
    healthy(server.url)


@pytest.mark.parametrize(
    ("mode", "payload", "status", "error", "detail"),
    [
        # Without Pipecat's WebRTC extra, as here (tests/pipecat/test_webrtc.py has it).
        ("auto", {"transport": "webrtc"}, 501, "webrtc_unavailable",
         "WebRTC sessions need Pipecat's WebRTC extra, which is not installed: install "
         "pipecat-ai[webrtc] (in this project: uv sync --group pipecat)"),
        ("auto", {"transport": "livekit"}, 422, "invalid_request",
         "transport: Input should be 'websocket', 'daily' or 'webrtc'"),
        ("auto", {"transport": "daily"}, 400, "daily_room_required",
         "a Daily session needs a room: send room_url and token, or set DAILY_API_KEY so the "
         "service creates one"),
        ("pipecat", {"transport": "websocket"}, 400, "mode_mismatch",
         "SESSION_MODE=pipecat does not serve WebSocket sessions"),
        ("websocket", {"transport": "daily"}, 400, "mode_mismatch",
         "SESSION_MODE=websocket serves WebSocket sessions only: connect to /ws (POST /start "
         "without a room announces one)"),
        ("auto", {"transport": "websocket", "createDailyRoom": True}, 400, "transport_mismatch",
         'transport "websocket" takes no Daily room: drop room_url, token and createDailyRoom, '
         'or send transport "daily"'),
    ],
    ids=["webrtc", "unknown", "daily-no-room", "ws-in-pipecat", "daily-in-websocket", "ws-room"],
)  # fmt: skip
def test_transport_field_refusals(
    server_for: ServerFactory,
    mode: str,
    payload: dict[str, object],
    status: int,
    error: str,
    detail: str,
) -> None:
    server = server_for({**ECHO, "SESSION_MODE": mode})
    response = httpx.post(f"{server.url}/start", json=payload)
    assert (response.status_code, response.json()) == (status, {"error": error, "detail": detail})
    assert httpx.get(f"{server.url}/health").json()["activeSessions"] == 0
    healthy(server.url)


def test_auto_mode_transport_websocket_announces_and_daily_room_is_daily(
    server_for: ServerFactory,
) -> None:
    # The announced WebSocket session is never claimed: it expires in 3 s, not the default
    # 30 s the drain at the test's end would wait for it.
    server = server_for({**ECHO, "PENDING_SESSION_TIMEOUT_SECS": "3"})
    ws = httpx.post(f"{server.url}/start", json={"transport": "websocket"})
    assert set(ws.json()) == {"wsUrl", "token"}
    own = {"transport": "daily", "room_url": "https://x.daily.co/r", "token": "bot-t"}
    daily = httpx.post(f"{server.url}/start", json=own)
    assert daily.json() == {"dailyRoom": "https://x.daily.co/r"}  # no DAILY_API_KEY: no token
    plain = httpx.post(f"{server.url}/start", json={})
    assert plain.json() == {"sessionId": plain.headers["x-session-id"]}


async def test_token_is_single_use_and_bound_to_its_session(server_for: ServerFactory) -> None:
    server = server_for({**ECHO, "SESSION_MODE": "websocket"})
    first = httpx.post(f"{server.url}/start").json()
    other = httpx.post(f"{server.url}/start")
    other_id = other.headers["x-session-id"]
    foreign = {"wsUrl": f"{server.ws_url}/ws?session_id={other_id}", "token": first["token"]}
    assert await refused(transport_ws_url(foreign)) == (
        4401,
        f"the session token belongs to another session, not {other_id}",
    )
    async with connect(transport_ws_url(first)) as ws:
        await ws.send("one")
        assert await ws.recv() == "one"
        session_id = first["wsUrl"].rsplit("=", 1)[1]
        assert await refused(transport_ws_url(first)) == (
            4401,
            f"the session token was already used: session {session_id} is connected",
        )
    # The other session is still waiting for its own token.
    async with connect(transport_ws_url(other.json())) as ws:
        await ws.send("two")
        assert await ws.recv() == "two"
    healthy(server.url)


async def test_expired_token_is_refused_and_starts_nothing(server_for: ServerFactory) -> None:
    server = server_for(
        {**ECHO, "SESSION_MODE": "websocket", "SESSION_TOKEN_TTL_SECS": "1",
         "PENDING_SESSION_TIMEOUT_SECS": "60"}
    )  # fmt: skip
    answer = httpx.post(f"{server.url}/start").json()
    wait_for(lambda: httpx.get(f"{server.url}/health").json()["activeSessions"] == 0)
    code, reason = await refused(transport_ws_url(answer))
    assert code == 4401
    assert reason is not None and reason.startswith("the session token expired ")
    assert reason.endswith("ago (SESSION_TOKEN_TTL_SECS is 1s): POST /start again")
    assert httpx.get(f"{server.url}/health").json()["activeSessions"] == 0
    healthy(server.url)


def test_failed_connects_do_not_exhaust_capacity(server_for: ServerFactory) -> None:
    server = server_for(
        {**ECHO, "SESSION_MODE": "websocket", "MAX_SESSIONS": "2", "SESSION_TOKEN_TTL_SECS": "1"}
    )
    for _ in range(3):  # each round: two announced sessions whose clients never connect
        for _ in range(2):
            assert httpx.post(f"{server.url}/start").status_code == 201
        assert httpx.post(f"{server.url}/start").status_code == 429
        wait_for(lambda: httpx.get(f"{server.url}/health").json()["activeSessions"] == 0)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'botdock_sessions_finished_total{kind="websocket",state="timed_out"} 6.0' in metrics
    healthy(server.url)
