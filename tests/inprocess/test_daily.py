"""Daily rooms created through Daily's REST API, against a fake Daily API served on loopback:
the requests sent, the tokens handed out, and every failure's status and error body."""

import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from loguru import logger

from tests.bots import recorder
from tests.fake_daily import FakeDaily, Reply, closed_port_url
from tests.helpers import wait_for
from tests.inprocess.clients import ClientFactory, manager, on_loop

KEY = "test-key"
CREATE = {"createDailyRoom": True}


def daily_client(client_for: ClientFactory, fake: FakeDaily | None, **values: Any) -> TestClient:
    settings: dict[str, Any] = {
        "session_mode": "daily",
        "daily_api_key": KEY,
        "daily_api_url": fake.url if fake is not None else closed_port_url(),
        "daily_read_timeout_secs": 0.5,
        **values,
    }
    return client_for(**settings)


class Counted:
    """The session counters behind /metrics: started, finished and rejected, summed."""

    def __init__(self, client: TestClient) -> None:
        self.registry = manager(client).metrics.registry

    def total(self, name: str) -> float:
        return math.fsum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name
        )

    @property
    def started(self) -> float:
        return self.total("botdock_sessions_started_total")

    @property
    def finished(self) -> float:
        return self.total("botdock_sessions_finished_total")

    @property
    def rejected(self) -> float:
        return self.total("botdock_sessions_rejected_total")


def assert_nothing_started(client: TestClient, counted: Counted) -> None:
    assert client.get("/health").json()["activeSessions"] == 0
    assert client.get("/sessions").json() == {"sessions": []}
    assert recorder.RECORDS == []
    assert (counted.started, counted.finished, counted.rejected) == (0, 0, 0)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru line written during the test, with its session id."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), format="{extra} | {message}", level="DEBUG")
    yield lines
    logger.remove(sink)


def room_exp_between(before: float, after: float, secs: float) -> range:
    return range(math.ceil(before + secs), math.ceil(after + secs) + 1)


# -- the happy path -----------------------------------------------------------------------


def test_start_creates_private_room_and_bot_gets_owner_token_caller_participant_token(
    client_for: ClientFactory, fake_daily: FakeDaily, log_lines: list[str]
) -> None:
    client = daily_client(client_for, fake_daily)
    before = time.time()
    response = client.post(
        "/start",
        json={
            **CREATE,
            "body": {"user": "ada"},
            "dailyRoomProperties": {"enable_chat": True, "start_video_off": True},
            "dailyMeetingTokenProperties": {"user_name": "Ada"},
        },
    )
    after = time.time()
    assert response.status_code == 201
    session_id = response.headers["x-session-id"]
    assert response.headers["location"] == f"/sessions/{session_id}"
    owner, participant = fake_daily.token(owner=True), fake_daily.token(owner=False)
    # Exactly what Pipecat's Daily transport reads; the session id is in the headers.
    assert response.json() == {
        "dailyRoom": "https://botdock-test.daily.co/room-1",
        "dailyToken": participant,
    }
    wait_for(lambda: len(recorder.RECORDS) == 1)
    assert [
        {
            "class": "DailySessionArguments",
            "session_id": session_id,
            "body": {"user": "ada"},
            "room_url": "https://botdock-test.daily.co/room-1",
            "token": owner,
        }
    ] == recorder.RECORDS

    room_request, *token_requests = fake_daily.requests
    assert fake_daily.paths() == [
        "POST /v1/rooms",
        "POST /v1/meeting-tokens",
        "POST /v1/meeting-tokens",
    ]
    for sent in fake_daily.requests:
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.headers["content-type"] == "application/json"
        assert sent.headers["user-agent"] == "botdock/0.1.0"
    exp = room_request.json["properties"]["exp"]
    assert exp in room_exp_between(before, after, 7200)  # the session's time limit
    assert room_request.json == {
        "privacy": "private",
        "properties": {
            "enable_chat": True,
            "start_video_off": True,
            "exp": exp,
            "eject_at_room_exp": True,
        },
    }
    bodies = sorted((r.json for r in token_requests), key=lambda b: not b["properties"]["is_owner"])
    assert bodies == [
        {"properties": {"room_name": "room-1", "is_owner": True, "exp": exp}},
        {"properties": {"user_name": "Ada", "room_name": "room-1", "is_owner": False, "exp": exp}},
    ]
    logged = "\n".join(log_lines)
    expires = datetime.fromtimestamp(exp, UTC).isoformat(timespec="seconds")
    assert (
        f"'session_id': '{session_id}'}} | Daily room room-1 created; it expires at {expires}"
        in (logged)
    )
    assert KEY not in logged and owner not in logged and participant not in logged


def test_auto_mode_creates_a_room_only_when_asked(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily, session_mode="auto")
    assert client.post("/start", json={"body": {}}).json().keys() == {"sessionId"}
    assert fake_daily.requests == []
    response = client.post("/start", json=CREATE)
    assert response.status_code == 201
    assert response.json()["dailyToken"] == fake_daily.token(owner=False)
    wait_for(lambda: len(recorder.RECORDS) == 2)
    assert [r["class"] for r in recorder.RECORDS] == [
        "PipecatSessionArguments",
        "DailySessionArguments",
    ]
    assert recorder.RECORDS[1]["token"] == fake_daily.token(owner=True)


def test_caller_room_gets_a_participant_token_minted_for_the_caller(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    before = time.time()
    response = client.post(
        "/start",
        json={
            **CREATE,
            "room_url": "https://example.daily.co/mine",
            "token": "bot-token-9",
            "dailyMeetingTokenProperties": {"user_name": "Ada"},
        },
    )
    after = time.time()
    assert response.status_code == 201
    participant = fake_daily.token(owner=False)
    assert response.json() == {
        "dailyRoom": "https://example.daily.co/mine",
        "dailyToken": participant,
    }
    (sent,) = fake_daily.requests
    assert sent.path == "/v1/meeting-tokens"
    exp = sent.json["properties"].pop("exp")
    assert sent.json == {"properties": {"user_name": "Ada", "room_name": "mine", "is_owner": False}}
    assert exp in room_exp_between(before, after, 7200)
    # /bot answers when the bot returns, too late for a caller's token: no Daily call.
    headers = {"x-daily-room-url": "https://example.daily.co/b", "x-daily-room-token": "t-b"}
    assert client.post("/bot", headers=headers).json() == {}
    assert len(fake_daily.requests) == 1
    wait_for(lambda: len(recorder.RECORDS) == 2)
    assert sorted(r["token"] for r in recorder.RECORDS) == ["bot-token-9", "t-b"]


def test_bot_route_creates_a_room_for_the_bot_alone(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    before = time.time()
    response = client.post(
        "/bot",
        json={"n": 1},
        headers={"x-daily-session-id": "pcc-7", "x-pcc-max-session-seconds": "600"},
    )
    after = time.time()
    assert (response.status_code, response.json()) == (200, {})
    assert fake_daily.paths() == ["POST /v1/rooms", "POST /v1/meeting-tokens"]
    exp = fake_daily.requests[0].json["properties"]["exp"]
    assert exp in room_exp_between(before, after, 600)  # x-pcc-max-session-seconds
    assert fake_daily.requests[1].json == {
        "properties": {"room_name": "room-1", "is_owner": True, "exp": exp}
    }
    assert [
        {
            "class": "DailySessionArguments",
            "session_id": "pcc-7",
            "body": {"n": 1},
            "room_url": "https://botdock-test.daily.co/room-1",
            "token": fake_daily.token(owner=True),
        }
    ] == recorder.RECORDS


def test_room_expiry_setting_and_caller_exp_only_shorten(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily, daily_room_expiry_secs=900)
    before = time.time()
    client.post("/start", json=CREATE)
    after = time.time()
    exp = fake_daily.requests[0].json["properties"]["exp"]
    assert exp in room_exp_between(before, after, 900)

    soon, late = int(time.time()) + 120, int(time.time()) + 10**6
    response = client.post(
        "/start",
        json={
            **CREATE,
            "dailyRoomProperties": {"exp": soon, "eject_at_room_exp": False},
            "dailyMeetingTokenProperties": {"exp": late, "room_name": "other", "is_owner": False},
        },
    )
    assert response.status_code == 201
    room_request, *token_requests = fake_daily.requests[3:]
    assert room_request.json["properties"] == {"exp": soon, "eject_at_room_exp": False}
    assert sorted(json.dumps(r.json, sort_keys=True) for r in token_requests) == sorted(
        json.dumps({"properties": props}, sort_keys=True)
        for props in (
            {"room_name": "room-2", "is_owner": True, "exp": soon},
            {"room_name": "room-2", "is_owner": False, "exp": soon},
        )
    )


def test_readyz_and_own_room_sessions_do_not_depend_on_daily(client_for: ClientFactory) -> None:
    client = daily_client(client_for, None)  # nothing listens at DAILY_API_URL
    assert client.post("/start", json=CREATE).status_code == 502
    assert client.get("/readyz").json() == {"status": "ready"}
    own = {"x-daily-room-url": "https://example.daily.co/r", "x-daily-room-token": "t"}
    assert client.post("/bot", headers=own).json() == {}
    wait_for(lambda: len(recorder.RECORDS) == 1)
    assert client.get("/readyz").status_code == 200


# -- refused before any call to Daily -----------------------------------------------------


def test_create_daily_room_without_key_is_400(client_for: ClientFactory) -> None:
    for mode in ("auto", "daily"):
        client = client_for(session_mode=mode, daily_api_key=None)
        response = client.post("/start", json=CREATE)
        assert response.status_code == 400
        assert response.json() == {
            "error": "daily_room_required",
            "detail": "createDailyRoom needs DAILY_API_KEY, which is not set on this service: "
            "set it, or send room_url and token for a room you already have",
        }
    assert recorder.RECORDS == []


@pytest.mark.parametrize(
    ("request_json", "detail"),
    [
        (
            {"dailyRoomProperties": [1]},
            "dailyRoomProperties: Input should be a valid dictionary",
        ),
        (
            {"dailyRoomProperties": {f"k{i}": i for i in range(51)}},
            "dailyRoomProperties has 51 keys; at most 50 are allowed",
        ),
        (
            {"dailyMeetingTokenProperties": {"user_name": "x" * 8200}},
            "dailyMeetingTokenProperties is 8216 bytes as JSON; at most 8192 are allowed",
        ),
        (
            {"dailyRoomProperties": {"exp": "soon"}},
            "dailyRoomProperties.exp must be a Unix time in seconds",
        ),
        ({"dailyRoomProperties": {"exp": 1000}}, "dailyRoomProperties.exp is in the past"),
        (
            {"dailyMeetingTokenProperties": {"is_owner": True}},
            "dailyMeetingTokenProperties.is_owner must be false or absent: the caller gets a "
            "participant token, only the bot owns the room",
        ),
    ],
)
def test_invalid_daily_properties_are_422_before_any_call(
    client_for: ClientFactory, fake_daily: FakeDaily, request_json: dict[str, Any], detail: str
) -> None:
    client = daily_client(client_for, fake_daily)
    counted = Counted(client)
    response = client.post("/start", json={**CREATE, **request_json})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_request", "detail": detail}
    assert fake_daily.requests == []
    assert_nothing_started(client, counted)


def test_capacity_and_drain_are_checked_before_any_call(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily, max_sessions=1)
    own = {"room_url": "https://example.daily.co/r", "token": "t", "body": {"sleep": 30}}
    assert client.post("/start", json=own).status_code == 201
    assert fake_daily.paths() == ["POST /v1/meeting-tokens"]  # the caller's token
    fake_daily.requests.clear()
    response = client.post("/start", json=CREATE)
    assert response.status_code == 429
    assert response.json()["error"] == "at_capacity"
    manager(client).begin_drain()
    assert client.post("/start", json=CREATE).json()["error"] == "draining"
    assert fake_daily.requests == []


# -- Daily failing ------------------------------------------------------------------------

ERRORS = [
    pytest.param(
        "/rooms",
        Reply(403, {"error": "forbidden-error", "info": "domain is disabled"}),
        "daily_forbidden",
        "Daily refused access for DAILY_API_KEY: HTTP 403 on POST /rooms "
        "(forbidden-error: domain is disabled)",
        id="403",
    ),
    pytest.param(
        "/rooms",
        Reply(500, {"error": "server-error", "info": "oops"}),
        "daily_server_error",
        "Daily failed: HTTP 500 on POST /rooms (server-error: oops)",
        id="500",
    ),
    pytest.param(
        "/rooms",
        Reply(502, body=b"<html>Bad Gateway</html>"),
        "daily_server_error",
        "Daily failed: HTTP 502 on POST /rooms",
        id="502-html",
    ),
    pytest.param(
        "/rooms",
        Reply(400, {"error": "invalid-request-error", "info": "unknown property 'colour'"}),
        "daily_error",
        "Daily refused the request: HTTP 400 on POST /rooms "
        "(invalid-request-error: unknown property 'colour')",
        id="400",
    ),
    pytest.param(
        "/rooms",
        Reply(200, body=b"<html>not json</html>"),
        "daily_bad_response",
        "Daily answered POST /rooms with a body that is not JSON",
        id="garbage",
    ),
    pytest.param(
        "/rooms",
        Reply(200, ["not", "an", "object"]),
        "daily_bad_response",
        "Daily answered POST /rooms with a body that is not a JSON object",
        id="json-array",
    ),
    pytest.param(
        "/rooms",
        Reply(200, {"name": "room-x"}),
        "daily_bad_response",
        "Daily answered POST /rooms with a body without the room's name and url",
        id="no-url",
    ),
    pytest.param(
        "/meeting-tokens",
        Reply(200, {"tok": "x"}),
        "daily_bad_response",
        "Daily answered POST /meeting-tokens with a body without a token",
        id="no-token",
    ),
]


@pytest.mark.parametrize(("path", "reply", "code", "detail"), ERRORS)
def test_daily_errors_are_502_naming_the_cause_and_start_nothing(
    client_for: ClientFactory,
    fake_daily: FakeDaily,
    log_lines: list[str],
    path: str,
    reply: Reply,
    code: str,
    detail: str,
) -> None:
    client = daily_client(client_for, fake_daily)
    counted = Counted(client)
    fake_daily.reply(path, reply)
    response = client.post("/start", json=CREATE)
    assert response.status_code == 502
    assert response.json() == {"error": code, "detail": detail}
    assert "retry-after" not in response.headers
    assert_nothing_started(client, counted)
    assert KEY not in response.text
    assert any(f"Daily room not created: {code} {detail}" in line for line in log_lines)
    assert not any(KEY in line for line in log_lines)


def test_wrong_key_is_502_daily_unauthorized_without_the_key(
    client_for: ClientFactory, fake_daily: FakeDaily, log_lines: list[str]
) -> None:
    client = daily_client(client_for, fake_daily, daily_api_key="sk-wrong-key-1234")
    counted = Counted(client)
    response = client.post("/start", json=CREATE)
    assert response.status_code == 502
    assert response.json() == {
        "error": "daily_unauthorized",
        "detail": "Daily rejected DAILY_API_KEY: HTTP 401 on POST /rooms "
        "(authentication-error: the API key is not valid)",
    }
    assert fake_daily.requests[0].headers["authorization"] == "Bearer sk-wrong-key-1234"
    assert fake_daily.paths() == ["POST /v1/rooms"]
    assert_nothing_started(client, counted)
    assert not any("sk-wrong-key-1234" in line for line in log_lines)


def test_daily_text_echoing_the_key_is_scrubbed(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    fake_daily.reply(
        "/rooms", Reply(400, {"error": "invalid-request-error", "info": f"bad key {KEY}\n!"})
    )
    response = client.post("/start", json=CREATE)
    assert response.json()["detail"] == (
        "Daily refused the request: HTTP 400 on POST /rooms (invalid-request-error: bad key *** !)"
    )


def test_rate_limit_is_502_with_retry_after_passed_through(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    counted = Counted(client)
    fake_daily.reply(
        "/rooms",
        Reply(
            429, {"error": "rate-limit-error", "info": "slow down"}, headers={"Retry-After": "7"}
        ),
    )
    response = client.post("/start", json=CREATE)
    assert response.status_code == 502
    assert response.headers["retry-after"] == "7"
    assert response.json() == {
        "error": "daily_rate_limited",
        "detail": "Daily is rate-limiting DAILY_API_KEY, retry later: HTTP 429 on POST /rooms "
        "(rate-limit-error: slow down)",
    }
    assert fake_daily.paths() == ["POST /v1/rooms"]  # a 429 is not retried
    assert_nothing_started(client, counted)


def test_room_creation_is_not_retried_after_a_5xx(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    fake_daily.reply("/rooms", Reply(503, {"error": "server-error"}))
    assert client.post("/start", json=CREATE).status_code == 502
    assert fake_daily.paths() == ["POST /v1/rooms"]


def test_token_request_is_retried_once_after_a_5xx(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    fake_daily.reply("/meeting-tokens", Reply(503, {"error": "server-error"}))
    response = client.post("/start", json=CREATE)
    assert response.status_code == 201
    assert fake_daily.paths() == ["POST /v1/rooms"] + ["POST /v1/meeting-tokens"] * 3
    assert response.json()["dailyToken"] == fake_daily.token(owner=False)
    wait_for(lambda: len(recorder.RECORDS) == 1)
    assert recorder.RECORDS[0]["token"] == fake_daily.token(owner=True)


def test_token_failing_twice_fails_the_start(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    counted = Counted(client)
    fake_daily.reply("/meeting-tokens", *[Reply(500, {"error": "server-error"})] * 4)
    response = client.post("/start", json=CREATE)
    assert response.status_code == 502
    assert response.json() == {
        "error": "daily_server_error",
        "detail": "Daily failed: HTTP 500 on POST /meeting-tokens (server-error)",
    }
    assert_nothing_started(client, counted)


def test_slow_daily_is_504_after_the_read_timeout(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily, daily_read_timeout_secs=0.3)
    counted = Counted(client)
    fake_daily.reply("/rooms", Reply(delay=5))
    started = time.monotonic()
    response = client.post("/start", json=CREATE)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {
        "error": "daily_timeout",
        "detail": "Daily did not answer POST /rooms within 0.3s (DAILY_READ_TIMEOUT_SECS)",
    }
    assert elapsed >= 0.3  # at the limit, not before; the fake's answer would come at 5 s
    assert fake_daily.paths() == ["POST /v1/rooms"]  # a timeout is not retried
    assert_nothing_started(client, counted)


def test_whole_start_is_bounded_by_the_start_timeout(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(
        client_for, fake_daily, daily_read_timeout_secs=5, daily_start_timeout_secs=0.5
    )
    counted = Counted(client)
    fake_daily.reply("/meeting-tokens", Reply(delay=5), Reply(delay=5))
    response = client.post("/start", json=CREATE)  # the detail names the deadline that fired
    assert response.status_code == 504
    assert response.json() == {
        "error": "daily_timeout",
        "detail": "creating the Daily room and its tokens took longer than 0.5s "
        "(DAILY_START_TIMEOUT_SECS)",
    }
    assert_nothing_started(client, counted)


def test_unreachable_daily_is_502(client_for: ClientFactory, log_lines: list[str]) -> None:
    url = closed_port_url()
    client = daily_client(client_for, None, daily_api_url=url)
    counted = Counted(client)
    response = client.post("/start", json=CREATE)
    assert response.status_code == 502
    assert response.json() == {
        "error": "daily_unreachable",
        "detail": f"could not connect to the Daily API at {url} (DAILY_API_URL)",
    }
    assert_nothing_started(client, counted)
    assert any("[ConnectError" in line for line in log_lines)  # the cause, for the operator


def test_bot_route_failure_is_the_same_error_and_starts_nothing(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily)
    counted = Counted(client)
    fake_daily.reply("/rooms", Reply(500, {"error": "server-error"}))
    response = client.post("/bot", headers={"x-daily-session-id": "pcc-fail"})
    assert response.status_code == 502
    assert response.json() == {
        "error": "daily_server_error",
        "detail": "Daily failed: HTTP 500 on POST /rooms (server-error)",
    }
    assert_nothing_started(client, counted)
    assert client.post("/bot", headers={"x-daily-session-id": "pcc-fail"}).status_code == 200


def test_session_cancelled_while_its_room_is_created_never_starts(
    client_for: ClientFactory, fake_daily: FakeDaily
) -> None:
    client = daily_client(client_for, fake_daily, daily_read_timeout_secs=20)
    answered = threading.Event()  # Daily answers the room request once the test says so
    fake_daily.reply("/rooms", Reply(held=answered))
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(client.post("/start", json=CREATE)))
    thread.start()
    wait_for(lambda: bool(client.get("/sessions").json()["sessions"]))
    (pending,) = client.get("/sessions").json()["sessions"]
    assert (pending["kind"], pending["state"]) == ("daily", "pending")
    on_loop(client, manager(client).cancel, pending["sessionId"])
    answered.set()
    thread.join(20)
    (response,) = answers
    assert response.status_code == 503
    assert response.json() == {
        "error": "session_cancelled",
        "detail": f"session {pending['sessionId']} was cancelled while its Daily room was "
        "being created",
    }
    assert recorder.RECORDS == []
    assert client.get("/health").json()["activeSessions"] == 0
    counted = Counted(client)  # nothing started, so nothing finished and no active gauge left
    assert (counted.started, counted.finished) == (0, 0)
    assert counted.total("botdock_sessions_active") == 0
