"""In-process tests of every route and session mode."""

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.bots import recorder, sync_blocker
from tests.helpers import b64, transport_ws_url, wait_for
from tests.inprocess.clients import ClientFactory, manager, on_loop

ROOM = {"x-daily-room-url": "https://example.daily.co/r1", "x-daily-room-token": "bot-token-1"}


# -- probes -------------------------------------------------------------------------------


def test_livez_readyz_health(client_for: ClientFactory) -> None:
    client: TestClient = client_for(session_mode="daily", max_sessions=7)
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    health = client.get("/health").json()
    assert set(health.pop("process")) == {"rssBytes", "openFds", "threads", "asyncioTasks"}
    loop = health.pop("eventLoop")
    assert set(loop) == {"lagSecs", "maxLagSecs", "windowSecs"}
    assert loop["windowSecs"] == 5 and loop["maxLagSecs"] >= loop["lagSecs"] >= 0
    assert health == {
        "status": "ok",
        "mode": "daily",
        "activeSessions": 0,
        "maxSessions": 7,
        "draining": False,
        "version": "0.1.0",
        "telephony": dict.fromkeys(["twilio", "telnyx", "plivo", "exotel"], "unauthenticated"),
    }


def test_readyz_follows_bot_readyz(client_for: ClientFactory) -> None:
    client = client_for(bot_module="tests.bots.not_ready")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"error": "not_ready", "detail": "bot readyz() reported not ready"}
    assert client.get("/livez").status_code == 200


# -- auto mode ----------------------------------------------------------------------------


def test_bot_with_room_headers_is_a_daily_session(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post(
        "/bot", json={"user": "ada"}, headers={**ROOM, "x-daily-session-id": "pcc-123"}
    )
    assert response.status_code == 200 and response.json() == {}
    assert [
        {
            "class": "DailySessionArguments",
            "session_id": "pcc-123",
            "body": {"user": "ada"},
            "room_url": ROOM["x-daily-room-url"],
            "token": ROOM["x-daily-room-token"],
        }
    ] == recorder.RECORDS


def test_bot_without_room_is_a_plain_session_with_generated_id(client_for: ClientFactory) -> None:
    client = client_for()
    assert client.post("/bot").json() == {}
    (record,) = recorder.RECORDS
    assert record["class"] == "PipecatSessionArguments"
    assert record["body"] == {}
    assert len(record["session_id"]) == 36  # a UUID4 string


def test_bot_without_room_keeps_the_callers_session_id_and_body(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post("/bot", json={"n": 1}, headers={"x-daily-session-id": "plain-1"})
    assert (response.status_code, response.json()) == (200, {})
    assert recorder.RECORDS == [
        {"class": "PipecatSessionArguments", "session_id": "plain-1", "body": {"n": 1}}
    ]


def test_start_plain_session_returns_201_with_session_id(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post("/start", json={"body": {"k": "v"}})
    assert response.status_code == 201
    session_id = response.json()["sessionId"]
    assert response.json() == {"sessionId": session_id}
    wait_for(lambda: len(recorder.RECORDS) == 1)
    assert recorder.RECORDS[0] == {
        "class": "PipecatSessionArguments",
        "session_id": session_id,
        "body": {"k": "v"},
    }


def test_start_with_caller_room_is_daily(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post(
        "/start", json={"room_url": "https://example.daily.co/r2", "token": "t2", "body": {}}
    )
    assert response.status_code == 201
    assert response.json()["dailyRoom"] == "https://example.daily.co/r2"
    wait_for(lambda: len(recorder.RECORDS) == 1)
    assert recorder.RECORDS[0]["class"] == "DailySessionArguments"
    assert recorder.RECORDS[0]["token"] == "t2"


def test_websocket_with_base64_body_echoes(client_for: ClientFactory) -> None:
    client = client_for()
    with client.websocket_connect(f"/ws?body={b64({'lang': 'en'})}") as ws:
        first = ws.receive_json()
        assert first["class"] == "WebSocketSessionArguments"
        assert first["body"] == {"lang": "en"}
        ws.send_text("hello")
        assert ws.receive_text() == "hello"


def test_websocket_urlsafe_unpadded_body_is_accepted(client_for: ClientFactory) -> None:
    client = client_for()
    encoded = base64.urlsafe_b64encode(json.dumps({"q": "??>>"}).encode()).decode().rstrip("=")
    with client.websocket_connect(f"/ws?body={encoded}") as ws:
        assert ws.receive_json()["body"] == {"q": "??>>"}


def test_websocket_without_body_gets_empty_object(client_for: ClientFactory) -> None:
    client = client_for()
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["body"] == {}


def test_websocket_without_pipecat_starts_at_once_with_no_transport_type(
    client_for: ClientFactory,
) -> None:
    """Without Pipecat nobody reads `transport_type`: no peek at the first message, so a
    client that waits for the bot to speak first is answered at once."""
    client = client_for()
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["transport_type"] is None


@pytest.fixture
def peeking(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with a Pipecat that reads `transport_type`: `/ws` peeks at the first message."""
    monkeypatch.setattr("app.routes.websocket.peek_needed", lambda: True)


@pytest.mark.usefixtures("peeking")
def test_websocket_peeked_text_reaches_the_bot_first(client_for: ClientFactory) -> None:
    client = client_for()
    with client.websocket_connect("/ws") as ws:
        ws.send_text("hello")
        ws.send_text("again")
        assert ws.receive_json()["transport_type"] == "websocket"
        assert ws.receive_text() == "hello"
        assert ws.receive_text() == "again"


@pytest.mark.usefixtures("peeking")
def test_websocket_peeked_binary_reaches_the_bot_first(client_for: ClientFactory) -> None:
    client = client_for(bot_module="tests.bots.echo")
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"\x08\x01")  # the echo bot echoes binary frames: it read this one
        assert ws.receive_bytes() == b"\x08\x01"


@pytest.mark.usefixtures("peeking")
def test_websocket_phone_stream_is_left_to_pipecat(client_for: ClientFactory) -> None:
    client = client_for()
    connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    with client.websocket_connect("/ws") as ws:
        ws.send_text(connected)
        assert ws.receive_json()["transport_type"] is None
        assert ws.receive_text() == connected


@pytest.mark.usefixtures("peeking")
def test_websocket_silent_client_is_plain_after_the_bound(
    client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.ws_detect.PEEK_SECS", 0.1)
    client = client_for()
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["transport_type"] == "websocket"
        ws.send_text("late")
        assert ws.receive_text() == "late"


def test_websocket_closed_when_bot_returns(client_for: ClientFactory) -> None:
    client = client_for()
    with client.websocket_connect(f"/ws?body={b64({'close': True})}") as ws:
        ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


def test_websocket_bot_failure_closes_1011_and_service_stays_ready(
    client_for: ClientFactory,
) -> None:
    client = client_for()
    with client.websocket_connect(f"/ws?body={b64({'raise': 'kaboom'})}") as ws:
        ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1011
        assert closed.value.reason == "bot raised RuntimeError"
    assert client.get("/readyz").status_code == 200


# -- websocket mode -----------------------------------------------------------------------


def test_websocket_mode_start_announces_and_ws_joins(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket")
    response = client.post("/start", json={"body": {"room": "lobby"}})
    assert response.status_code == 201
    session_id = response.headers["x-session-id"]
    assert response.headers["location"] == f"/sessions/{session_id}"
    assert response.json() == {
        "wsUrl": f"ws://testserver/ws?session_id={session_id}",
        "token": response.json()["token"],
    }
    ws_url = transport_ws_url(response.json())
    listed = client.get(f"/sessions/{session_id}").json()
    assert (listed["state"], listed["kind"]) == ("pending", "websocket")
    with client.websocket_connect(ws_url.removeprefix("ws://testserver")) as ws:
        first = ws.receive_json()
        assert first == {
            "class": "WebSocketSessionArguments",
            "session_id": session_id,
            "body": {"room": "lobby"},
            "transport_type": None,
        }
        assert client.get(f"/sessions/{session_id}").json()["state"] == "running"


def test_websocket_mode_refuses_http_bot(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket")
    response = client.post("/bot", json={})
    assert response.status_code == 400
    assert response.json() == {
        "error": "mode_mismatch",
        "detail": "SESSION_MODE=websocket serves WebSocket sessions only: connect to /ws "
        "(POST /start without a room announces one)",
    }
    assert client.post("/start", json={"createDailyRoom": True}).status_code == 400
    assert recorder.RECORDS == []


@pytest.mark.parametrize(
    ("query", "code", "reason"),
    [
        ("", 4401, "needs the token that POST /start answered (?token=)"),
        ("&token=not-the-token", 4401, "the session token is not valid"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_announced_session_is_claimed_only_with_its_token(
    client_for: ClientFactory, query: str, code: int, reason: str
) -> None:
    client = client_for(session_mode="websocket")
    response = client.post("/start")
    answer, session_id = response.json(), response.headers["x-session-id"]
    with (
        client.websocket_connect(f"/ws?session_id={session_id}{query}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == code and reason in closed.value.reason
    # The rightful client still gets it, once: the token is spent by the first claim.
    ws_path = transport_ws_url(answer).removeprefix("ws://testserver")
    with client.websocket_connect(ws_path) as ws:
        assert ws.receive_json()["session_id"] == session_id
        with (
            client.websocket_connect(ws_path) as second,
            pytest.raises(WebSocketDisconnect) as taken,
        ):
            second.receive_text()
        assert (taken.value.code, taken.value.reason) == (
            4401,
            f"the session token was already used: session {session_id} is connected",
        )


def test_announced_session_token_replaces_the_api_key(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket", api_key="backend-only-key")
    response = client.post("/start", headers={"authorization": "Bearer backend-only-key"})
    with client.websocket_connect(
        transport_ws_url(response.json()).removeprefix("ws://testserver")
    ) as ws:
        assert ws.receive_json()["session_id"] == response.headers["x-session-id"]


def test_joining_an_unknown_session_is_refused(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket")
    with (
        client.websocket_connect("/ws?session_id=nope&token=forged") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4401, "the session token is not valid")


def test_announced_session_expires_when_nobody_connects(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket", pending_session_timeout_secs=0.2)
    session_id = client.post("/start").headers["x-session-id"]
    wait_for(lambda: client.get(f"/sessions/{session_id}").status_code == 404)
    assert client.get("/health").json()["activeSessions"] == 0


# -- pipecat and daily modes --------------------------------------------------------------


def test_pipecat_mode_refuses_rooms_and_websockets(client_for: ClientFactory) -> None:
    client = client_for(session_mode="pipecat")
    response = client.post("/bot", headers=ROOM)
    assert response.status_code == 400
    assert response.json() == {
        "error": "mode_mismatch",
        "detail": "SESSION_MODE=pipecat serves plain sessions only; this request asks for a "
        "Daily room",
    }
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4400
    assert closed.value.reason == "SESSION_MODE=pipecat does not serve WebSocket sessions"
    assert client.post("/bot").json() == {}
    assert [r["class"] for r in recorder.RECORDS] == ["PipecatSessionArguments"]


def test_daily_mode_without_room_or_key_says_what_is_needed(client_for: ClientFactory) -> None:
    client = client_for(session_mode="daily")
    response = client.post("/bot")
    assert response.status_code == 400
    assert response.json() == {
        "error": "daily_room_required",
        "detail": "a Daily session needs a room: send x-daily-room-url and x-daily-room-token, "
        "or set DAILY_API_KEY so the service creates one",
    }
    response = client.post("/start", json={})
    assert response.json()["detail"] == (
        "a Daily session needs a room: send room_url and token, or set DAILY_API_KEY so the "
        "service creates one"
    )
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.reason == "SESSION_MODE=daily does not serve WebSocket sessions"
    assert recorder.RECORDS == []


def test_daily_mode_with_room_headers_runs(client_for: ClientFactory) -> None:
    client = client_for(session_mode="daily")
    assert client.post("/bot", headers=ROOM).status_code == 200
    assert recorder.RECORDS[0]["class"] == "DailySessionArguments"


def test_half_a_room_is_refused(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post("/bot", headers={"x-daily-room-url": "https://example.daily.co/x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "incomplete_room",
        "detail": "a Daily room needs both x-daily-room-url and x-daily-room-token; "
        "x-daily-room-token is missing",
    }


# -- sessions -----------------------------------------------------------------------------


def test_sessions_lists_running_sessions(client_for: ClientFactory) -> None:
    client = client_for()
    session_id = client.post("/start", json={"body": {"sleep": 30}}).json()["sessionId"]
    listing = client.get("/sessions").json()["sessions"]
    assert [s["sessionId"] for s in listing] == [session_id]
    one = client.get(f"/sessions/{session_id}").json()
    assert set(one) == {"sessionId", "kind", "state", "startedAt", "ageSecs"}
    assert (one["kind"], one["state"]) == ("pipecat", "running")
    assert client.get("/health").json()["activeSessions"] == 1


def test_unknown_session_id_is_404(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.get("/sessions/not-a-session")
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_session",
        "detail": "no active session not-a-session",
    }


def test_duplicate_session_id_is_409(client_for: ClientFactory) -> None:
    client = client_for()
    client.post("/start", json={"body": {"sleep": 30}})
    session_id = client.get("/sessions").json()["sessions"][0]["sessionId"]
    response = client.post("/bot", headers={"x-daily-session-id": session_id})
    assert response.status_code == 409
    assert response.json() == {
        "error": "session_exists",
        "detail": f"session {session_id} is already active",
    }


def test_bot_failure_answers_500_and_service_stays_ready(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post("/bot", json={"raise": "boom"}, headers={"x-daily-session-id": "s-f"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "bot_failed",
        "detail": "bot() raised an exception; session s-f failed (the service log has the "
        "traceback)",
    }
    assert client.get("/readyz").status_code == 200
    assert client.post("/bot").status_code == 200


def test_openapi_lists_every_route(client_for: ClientFactory) -> None:
    paths = set(client_for().get("/openapi.json").json()["paths"])
    assert {
        "/livez",
        "/readyz",
        "/health",
        "/start",
        "/bot",
        "/sessions",
        "/sessions/{session_id}",
    } <= paths


def test_console_is_served_at_root_and_left_out_of_the_openapi_schema(
    client_for: ClientFactory,
) -> None:
    client = client_for(api_key="console-key")
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/static/console.js">' in page.text
    script = client.get("/console/static/console.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    # Open without the key: the page must load to ask for it. It says only that one is needed.
    assert client.get("/console/settings").json() == {"apiKeyRequired": True, "webrtc": False}
    paths = set(client.get("/openapi.json").json()["paths"])
    assert not {p for p in paths if p == "/" or p.startswith("/console")}


@pytest.mark.parametrize("path", ["/", "/console/settings", "/console/static/console.js"])
def test_console_disabled_answers_404(client_for: ClientFactory, path: str) -> None:
    client = client_for(console_enabled=False)
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": f"no route GET {path}"}
    assert client.get("/readyz").status_code == 200


# -- lifecycle in process -----------------------------------------------------------------


@pytest.fixture
def blocked_thread_released() -> Iterator[None]:
    """Let the sync bots of tests.bots.sync_blocker go once the test is over."""
    yield
    sync_blocker.RELEASE.set()
    sync_blocker.RELEASE.clear()


def test_sync_bot_past_timeout_releases_its_slot_at_once(
    client_for: ClientFactory, blocked_thread_released: None
) -> None:
    client = client_for(bot_module="tests.bots.sync_blocker", session_timeout_secs=0.3)
    # The bot's thread stays blocked until the test ends: the answer comes at the limit.
    response = client.post("/bot", json={}, headers={"x-daily-session-id": "sync-1"})
    assert not sync_blocker.RELEASE.is_set()
    assert response.status_code == 504
    assert response.json() == {
        "error": "session_timed_out",
        "detail": "session sync-1: session exceeded its limit of 0.3s",
    }
    assert client.get("/health").json()["activeSessions"] == 0
    assert client.get("/readyz").status_code == 200


def test_cancel_an_announced_websocket_session(client_for: ClientFactory) -> None:
    client = client_for(session_mode="websocket")
    response = client.post("/start")
    session_id = response.headers["x-session-id"]
    assert client.delete(f"/sessions/{session_id}").status_code == 202
    assert client.get(f"/sessions/{session_id}").status_code == 404
    with (
        client.websocket_connect(
            transport_ws_url(response.json()).removeprefix("ws://testserver")
        ) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 4404


def test_readyz_is_503_while_full_and_200_after(client_for: ClientFactory) -> None:
    client = client_for(max_sessions=1)
    session_id = client.post("/start", json={"body": {"sleep": 30}}).json()["sessionId"]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"error": "not_ready", "detail": "at capacity: 1/1 sessions"}
    assert client.get("/health").json()["status"] == "full"
    refused = client.post("/bot")
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
    client.delete(f"/sessions/{session_id}")
    wait_for(lambda: client.get("/readyz").status_code == 200)


def test_announced_session_released_after_a_failed_handshake_is_counted_once(
    client_for: ClientFactory,
) -> None:
    client = client_for(session_mode="websocket")
    session_id = client.post("/start").headers["x-session-id"]
    sessions = manager(client)
    token = sessions.get(session_id).claim_token  # type: ignore[union-attr]
    session = on_loop(client, sessions.claim, session_id, token)
    on_loop(client, sessions.release, session)
    metrics = sessions.metrics.registry
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.collect()
        for s in family.samples
    }
    assert samples[("botdock_sessions_active", (("kind", "websocket"),))] == 0
    key = ("botdock_sessions_finished_total", (("kind", "websocket"), ("state", "cancelled")))
    assert samples[key] == 1
    assert client.get("/health").json()["activeSessions"] == 0


def test_websocket_cannot_join_a_running_http_session(client_for: ClientFactory) -> None:
    client = client_for()
    session_id = client.post("/start", json={"body": {"sleep": 30}}).json()["sessionId"]
    with (
        client.websocket_connect(f"/ws?session_id={session_id}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (
        4401,
        f"session {session_id} needs the token that POST /start answered (?token=)",
    )
    assert client.get(f"/sessions/{session_id}").json()["state"] == "running"


def test_websocket_takes_the_callers_session_id_as_pipecat_cloud_sends_it(
    client_for: ClientFactory,
) -> None:
    client = client_for()
    headers = {"x-daily-session-id": "pcc-ws-1"}
    with client.websocket_connect("/ws", headers=headers) as ws:
        assert ws.receive_json()["session_id"] == "pcc-ws-1"
        assert client.get("/sessions/pcc-ws-1").json()["kind"] == "websocket"
        with (
            client.websocket_connect("/ws", headers=headers) as twin,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            twin.receive_text()
        assert (closed.value.code, closed.value.reason) == (
            4409,
            "session pcc-ws-1 is already active",
        )
    with (
        client.websocket_connect("/ws", headers={"x-daily-session-id": "x" * 129}) as ws,
        pytest.raises(WebSocketDisconnect) as refused,
    ):
        ws.receive_text()
    assert (refused.value.code, refused.value.reason) == (
        4422,
        "x-daily-session-id: must be 1 to 128 characters",
    )
