"""Bad input in process: each gets its exact status and message, starts nothing, and the
service stays healthy."""

import base64

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.bots import recorder
from tests.inprocess.clients import ClientFactory


def assert_healthy_and_nothing_started(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/health").json()["activeSessions"] == 0
    assert recorder.RECORDS == []


@pytest.mark.parametrize("route", ["/bot", "/start"])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": ', "Expecting value at position 6"),
        (b"{bad", "Expecting property name enclosed in double quotes at position 1"),
    ],
)
def test_malformed_json(client_for: ClientFactory, route: str, body: bytes, reason: str) -> None:
    client = client_for()
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_json",
        "detail": f"request body is malformed JSON: {reason}",
    }
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"\xff\xfe{}", 400, "request body is not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, 413, "request body is larger than MAX_BODY_BYTES (4096 bytes)"),
        (b"[" * 1500 + b"]" * 1500, 400,
         "request body is not acceptable JSON: maximum recursion depth exceeded while decoding "
         "a JSON array from a unicode string"),
        (b'{"n": ' + b"9" * 30 + b"}", 400,
         "request body is not acceptable JSON: number 999999999999999999999999999999... is out "
         "of range"),
        (b'{"n": 1e999}', 400, "request body is not acceptable JSON: number 1e999 is out of range"),
        (b'{"n": NaN}', 400, "request body is not acceptable JSON: NaN is not valid JSON"),
        (b'{"a": 1, "a": 2}', 400, "request body is not acceptable JSON: duplicate key 'a'"),
        (b'{"a": "\xc3\x28"}', 400, "request body is not valid UTF-8"),
    ],
    ids=["bad-utf8", "over-limit-nesting", "deep-nesting", "huge-int", "huge-float",
         "nan", "duplicate-keys", "bad-utf8-in-string"],
)  # fmt: skip
def test_hostile_json_bodies(
    client_for: ClientFactory, body: bytes, status: int, detail: str
) -> None:
    client = client_for(max_body_bytes=4096)
    response = client.post("/bot", content=body, headers={"content-type": "application/json"})
    got = response.json()
    assert (response.status_code, got) == (status, {"error": got["error"], "detail": detail})
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize("route", ["/bot", "/start"])
def test_json_array_body(client_for: ClientFactory, route: str) -> None:
    client = client_for()
    response = client.post(route, json=[1, 2])
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_body",
        "detail": "request body must be a JSON object, got an array",
    }
    assert_healthy_and_nothing_started(client)


def test_start_body_field_must_be_an_object(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.post("/start", json={"body": "text"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "detail": "body: Input should be a valid dictionary",
    }
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize("route", ["/bot", "/start"])
def test_wrong_content_type(client_for: ClientFactory, route: str) -> None:
    client = client_for()
    response = client.post(route, content=b"a=1", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported_media_type",
        "detail": "Content-Type must be application/json, got 'text/plain'",
    }
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize("route", ["/bot", "/start"])
def test_body_over_limit(client_for: ClientFactory, route: str) -> None:
    client = client_for(max_body_bytes=100)
    response = client.post(route, json={"pad": "x" * 200})
    assert response.status_code == 413
    assert response.json() == {
        "error": "body_too_large",
        "detail": "request body is larger than MAX_BODY_BYTES (100 bytes)",
    }
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-3", "Input should be greater than or equal to 1"),
        ("5e-324", "Input should be greater than or equal to 1"),
        ("0.5", "Input should be greater than or equal to 1"),
        ("nan", "Input should be a finite number"),
    ],
)
def test_invalid_session_timeout_header(
    client_for: ClientFactory, value: str, problem: str
) -> None:
    client = client_for()
    response = client.post("/bot", headers={"x-pcc-max-session-seconds": value})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "detail": f"x-pcc-max-session-seconds: {problem}",
    }
    assert_healthy_and_nothing_started(client)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/bot", 405, "POST"),
        ("PUT", "/bot", 405, "POST"),
        ("PATCH", "/sessions/abc", 405, "DELETE, GET"),
        ("POST", "/livez", 405, "GET"),
        ("GET", "/nowhere", 404, None),
        ("DELETE", "/", 405, "GET"),  # the console page
        ("DELETE", "/nowhere", 404, None),
    ],
)
def test_wrong_methods_and_unknown_routes(
    client_for: ClientFactory, method: str, path: str, status: int, allow: str | None
) -> None:
    client = client_for()
    response = client.request(method, path)
    if status == 405:
        error = {
            "error": "method_not_allowed",
            "detail": f"method {method} is not allowed on {path}",
        }
    else:
        error = {"error": "not_found", "detail": f"no route {method} {path}"}
    assert (response.status_code, response.json()) == (status, error)
    assert response.headers.get("allow") == allow
    assert_healthy_and_nothing_started(client)


def refused(client: TestClient, url: str) -> WebSocketDisconnect:
    with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    return closed.value


def test_websocket_invalid_base64(client_for: ClientFactory) -> None:
    client = client_for()
    closed = refused(client, "/ws?body=%25%25not-base64%25%25")
    assert (closed.code, closed.reason) == (4400, "query parameter 'body' is not valid base64")
    assert_healthy_and_nothing_started(client)


def test_websocket_base64_of_non_json(client_for: ClientFactory) -> None:
    client = client_for()
    encoded = base64.b64encode(b"hello there").decode()
    closed = refused(client, f"/ws?body={encoded}")
    assert closed.code == 4400
    assert closed.reason == "decoded 'body' is malformed JSON: Expecting value at position 0"
    assert_healthy_and_nothing_started(client)


def test_websocket_base64_of_json_array(client_for: ClientFactory) -> None:
    client = client_for()
    closed = refused(client, f"/ws?body={base64.b64encode(b'[1]').decode()}")
    assert (closed.code, closed.reason) == (
        4422,
        "decoded 'body' must be a JSON object, got an array",
    )
    assert_healthy_and_nothing_started(client)


def test_websocket_body_and_session_id_together(client_for: ClientFactory) -> None:
    client = client_for()
    closed = refused(client, "/ws?body=e30&session_id=x")
    assert (closed.code, closed.reason) == (4400, "send either 'body' or 'session_id', not both")
    assert_healthy_and_nothing_started(client)


def test_websocket_body_over_limit(client_for: ClientFactory) -> None:
    client = client_for(max_body_bytes=30)
    encoded = base64.b64encode(b'{"pad": "' + b"x" * 100 + b'"}').decode()
    closed = refused(client, f"/ws?body={encoded}")
    assert (closed.code, closed.reason) == (
        4413,
        "request body is larger than MAX_BODY_BYTES (30 bytes)",
    )
    assert_healthy_and_nothing_started(client)
