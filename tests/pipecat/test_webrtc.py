"""WebRTC sessions in the real service with a real Pipecat bot, and aiortc as the peer: both
run in a network namespace of the test's own (tests/pipecat/netns.py), since aiortc gathers
no loopback candidates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests import secrets
from tests.pipecat.netns import SERVER_ADDRESS, Netns, netns
from tests.server import ROOT, ServerProcess

KEY = secrets.API_KEY
AUTH = {"authorization": f"Bearer {KEY}"}
BOT = "tests.pipecat.bots.webrtc_echo"


class Peer:
    """tests/pipecat/webrtc_client.py, running in the namespace."""

    def __init__(self, ns: Netns) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            [*ns.prefix, sys.executable, "-m", "tests.pipecat.webrtc_client"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def send(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the client exited: {self.stderr()}"
        result: dict[str, Any] = json.loads(line)
        return result

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Rig:
    """The service (with the WebRTC echo bot) and its clients, in one namespace."""

    def __init__(self, ns: Netns, env: Mapping[str, str]) -> None:
        self.ns = ns
        self.server = ServerProcess(
            {"BOT_MODULE": BOT, "API_KEY": KEY, **env}, prefix=ns.prefix, host=SERVER_ADDRESS
        )
        self.server.spawn()
        self.server.wait_answering(poll=0.2)
        self.peers: list[Peer] = []
        self.http_peer = self.peer()

    def peer(self) -> Peer:
        peer = Peer(self.ns)
        self.peers.append(peer)
        return peer

    def url(self, path: str) -> str:
        return self.server.url + path

    def http(
        self, method: str, path: str, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return self.http_peer.send(
            op="http", method=method, url=self.url(path), json=json, headers=dict(headers or {})
        )

    def wait_session_gone(self, session_id: str) -> None:
        for _ in range(300):
            if self.http("GET", f"/sessions/{session_id}", headers=AUTH)["status"] == 404:
                return
            subprocess.run(["sleep", "0.1"], check=True)
        raise AssertionError(f"session {session_id} still active:\n{self.server.log_tail()}")

    def close(self) -> None:
        for peer in self.peers:
            peer.stop()
        self.server.stop(timeout=20)
        log = self.server.log()
        self.server.discard()
        leaked = [secret for secret in secrets.ALL if secret in log]
        assert not leaked, f"secret values reached the service log: {leaked}"


RigFactory = Callable[..., Rig]


@pytest.fixture
def rig_for() -> Iterator[RigFactory]:
    rigs: list[Rig] = []
    with netns() as ns:

        def start(env: Mapping[str, str] | None = None) -> Rig:
            rig = Rig(ns, env or {})
            rigs.append(rig)
            return rig

        try:
            yield start
        finally:
            for rig in rigs:
                rig.close()


def healthy(rig: Rig, active: int = 0, status: str = "ok") -> None:
    health = rig.http("GET", "/health")
    assert health["status"] == 200
    assert (health["body"]["status"], health["body"]["activeSessions"]) == (status, active)


# SESSION_ISOLATION=process: the worker running the session makes the peer connection and
# answers the offer; the server forwards offers and candidates to it.
ISOLATIONS = pytest.mark.parametrize(
    "isolation", [{}, {"SESSION_ISOLATION": "process"}], ids=["inline", "process"]
)


@ISOLATIONS
def test_start_answers_what_the_smallwebrtc_client_takes_and_the_bot_echoes(
    rig_for: RigFactory, isolation: dict[str, str]
) -> None:
    rig = rig_for(isolation)
    started = rig.http("POST", "/start", {"transport": "webrtc", "body": {"user": "ada"}}, AUTH)
    assert started["status"] == 201
    session_id = started["body"]["sessionId"]
    endpoint = started["body"]["webrtcRequestParams"]["endpoint"]
    prefix = rig.url(f"/sessions/{session_id}/api/offer?token=")
    assert endpoint.startswith(prefix) and len(endpoint) > len(prefix)
    assert started["body"] == {
        "sessionId": session_id,
        "webrtcRequestParams": {"endpoint": endpoint},
        "iceConfig": {"iceServers": []},
    }
    assert rig.http("GET", f"/sessions/{session_id}", headers=AUTH)["body"]["state"] == "pending"

    peer = rig.peer()  # a browser: the offer URL's token, never the API key
    connected = peer.send(op="connect", url=endpoint, trickle=True)
    assert connected["status"] == 200, connected
    assert connected["body"]["type"] == "answer"
    assert connected["body"]["pc_id"]
    assert (connected["patch_status"], connected["patch_body"]) == (200, {"status": "success"})
    assert connected["trickled"] > 0
    echo = peer.send(op="echo")
    assert echo.get("audio_bytes", 0) > 0, (echo, peer.stderr(), rig.server.log_tail())
    info = rig.http("GET", f"/sessions/{session_id}", headers=AUTH)["body"]
    assert (info["kind"], info["state"]) == ("webrtc", "running")

    # The token was single-use: a second offer on it is refused.
    again = rig.peer().send(op="connect", url=endpoint)
    assert again["status"] == 401
    assert again["body"] == {
        "error": "session_token_used",
        "detail": f"the session token was already used: session {session_id} is connected",
    }

    assert peer.send(op="close") == {}
    rig.wait_session_gone(session_id)
    log = rig.server.log()
    assert '"body": {"user": "ada"}' in log
    assert '"is_runner_arguments": true' in log and '"transport": "SmallWebRTCTransport"' in log
    assert "session completed kind=webrtc" in log
    # The service ran the Pipecat this run asked for (run_versions.sh names it).
    assert f'"pipecat": "{os.environ.get("BOTDOCK_EXPECT_PIPECAT", "")}' in log
    metrics = rig.http("GET", "/metrics")["body"]
    assert 'botdock_sessions_finished_total{kind="webrtc",state="completed"} 1.0' in metrics
    healthy(rig)


@ISOLATIONS
def test_delete_cancels_a_webrtc_session_and_closes_its_peer(
    rig_for: RigFactory, isolation: dict[str, str]
) -> None:
    rig = rig_for(isolation)
    peer = rig.peer()
    connected = peer.send(
        op="connect",
        url=rig.url("/api/offer"),
        headers={**AUTH, "x-daily-session-id": "call-1"},
        request_data={"from": "api"},
    )
    assert connected["status"] == 200, connected
    assert peer.send(op="echo").get("audio_bytes", 0) > 0
    renegotiated = peer.send(op="renegotiate")  # an offer naming its pc_id: the same peer
    assert renegotiated["status"] == 200, renegotiated
    assert renegotiated["body"]["pc_id"] == connected["body"]["pc_id"]
    assert rig.http("GET", "/sessions", headers=AUTH)["body"]["sessions"][0]["sessionId"] == (
        "call-1"
    )
    cancelled = rig.http("DELETE", "/sessions/call-1", headers=AUTH)
    assert cancelled == {"status": 202, "body": {"sessionId": "call-1", "state": "cancelling"}}
    closed = peer.send(op="wait_closed")
    assert closed.get("closed_by"), closed
    rig.wait_session_gone("call-1")
    log = rig.server.log()
    assert '"body": {"from": "api"}' in log
    assert "session cancelled kind=webrtc" in log
    healthy(rig)


def test_sigterm_drains_a_webrtc_session_closes_its_peer_and_exits_0(
    rig_for: RigFactory,
) -> None:
    """Drain on SIGTERM: the running WebRTC session is cancelled when DRAIN_TIMEOUT_SECS
    passes, its peer connection is closed, and the service exits 0."""
    rig = rig_for({"DRAIN_TIMEOUT_SECS": "1"})
    peer = rig.peer()
    connected = peer.send(
        op="connect", url=rig.url("/api/offer"), headers={**AUTH, "x-daily-session-id": "call-9"}
    )
    assert connected["status"] == 200, connected
    assert peer.send(op="echo").get("audio_bytes", 0) > 0
    rig.server.signal(signal.SIGTERM)
    closed = peer.send(op="wait_closed")
    assert closed.get("closed_by"), closed
    assert rig.server.wait(timeout=30) == 0
    log = rig.server.log()
    assert "SIGTERM received: draining" in log
    assert "session cancelled kind=webrtc" in log
    assert "drain timeout reached" in log


def test_a_full_service_refuses_offers_with_429(rig_for: RigFactory) -> None:
    rig = rig_for({"MAX_SESSIONS": "1"})
    first = rig.peer()
    assert first.send(op="connect", url=rig.url("/api/offer"), headers=AUTH)["status"] == 200
    second = rig.peer().send(op="connect", url=rig.url("/api/offer"), headers=AUTH)
    assert second["status"] == 429
    assert second["body"] == {
        "error": "at_capacity",
        "detail": "all 1 session slots are in use (MAX_SESSIONS); retry shortly",
    }
    start = rig.http("POST", "/start", {"transport": "webrtc"}, AUTH)
    assert (start["status"], start["body"]["error"]) == (429, "at_capacity")
    healthy(rig, active=1, status="full")
    [running] = rig.http("GET", "/sessions", headers=AUTH)["body"]["sessions"]
    assert first.send(op="close") == {}
    rig.wait_session_gone(running["sessionId"])
    healthy(rig)


def test_bot_with_transport_type_webrtc_waits_for_its_offer(rig_for: RigFactory) -> None:
    rig = rig_for()
    waiting = rig.peer()  # POST /bot answers when the bot returns: its own client
    assert waiting.proc.stdin is not None
    waiting.proc.stdin.write(
        json.dumps(
            {
                "op": "http",
                "method": "POST",
                "url": rig.url("/bot"),
                "json": {"from": "bot"},
                "headers": {
                    **AUTH,
                    "x-daily-session-id": "pcc-1",
                    "x-daily-transport-type": "webrtc",
                },
            }
        )
        + "\n"
    )
    waiting.proc.stdin.flush()
    for _ in range(300):
        if rig.http("GET", "/sessions/pcc-1", headers=AUTH)["status"] == 200:
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert rig.http("GET", "/sessions/pcc-1", headers=AUTH)["body"]["state"] == "pending"
    peer = rig.peer()
    offer_headers = {**AUTH, "x-daily-session-id": "pcc-1"}
    connected = peer.send(op="connect", url=rig.url("/api/offer"), headers=offer_headers)
    assert connected["status"] == 200, connected
    assert peer.send(op="echo").get("audio_bytes", 0) > 0
    assert peer.send(op="close") == {}
    assert waiting.proc.stdout is not None
    assert json.loads(waiting.proc.stdout.readline()) == {"status": 200, "body": {}}
    assert '"body": {"from": "bot"}' in rig.server.log()


def test_bot_with_transport_type_webrtc_and_no_offer_times_out(rig_for: RigFactory) -> None:
    rig = rig_for({"PENDING_SESSION_TIMEOUT_SECS": "0.5"})
    headers = {**AUTH, "x-daily-session-id": "pcc-2", "x-daily-transport-type": "webrtc"}
    answer = rig.http("POST", "/bot", {}, headers)
    assert answer == {
        "status": 504,
        "body": {
            "error": "session_timed_out",
            "detail": "session pcc-2: no WebRTC offer arrived in time",
        },
    }
    healthy(rig)


SDP_ERRORS = [
    (
        {"sdp": "hello", "type": "offer"},
        422,
        "invalid_offer",
        "sdp is not an SDP session description (it starts with v=0)",
    ),
    (
        {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "type": "offer"},
        422,
        "invalid_offer",
        "the SDP offer has no media section (m=)",
    ),
    ({"type": "offer"}, 422, "invalid_request", "sdp: Field required"),
    ({"sdp": "v=0"}, 422, "invalid_request", "type: Field required"),
    (
        {"sdp": "v=0", "type": "answer"},
        422,
        "invalid_request",
        "type: Input should be 'offer'",
    ),
    (
        {"sdp": "v=0", "type": "offer", "pc_id": "nobody"},
        404,
        "unknown_peer",
        "no peer connection 'nobody'",
    ),
    (
        {"sdp": "v=0", "type": "offer", "request_data": [1]},
        422,
        "invalid_request",
        "request_data: Input should be a valid dictionary",
    ),
]


# An SDP with media that passes the service's own checks but that aiortc refuses.
NO_ICE_SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


@ISOLATIONS
def test_an_offer_aiortc_refuses_is_a_422_and_the_service_stays_healthy(
    rig_for: RigFactory, isolation: dict[str, str]
) -> None:
    """Inline the server refuses it before starting the session; in process mode the worker
    refuses it, the client gets the same answer, and the session it started ends failed."""
    rig = rig_for(isolation)
    headers = {**AUTH, "x-daily-session-id": "call-r"}
    refused = rig.http("POST", "/api/offer", {"sdp": NO_ICE_SDP, "type": "offer"}, headers)
    assert refused == {
        "status": 422,
        "body": {
            "error": "invalid_offer",
            "detail": "the SDP offer was refused: "
            "ValueError: ICE username fragment or password is missing",
        },
    }
    rig.wait_session_gone("call-r")
    if isolation:
        assert (
            "session failed kind=webrtc duration=" in rig.server.log()
            and "(the SDP offer was refused: ValueError: ICE username fragment" in rig.server.log()
        )
    healthy(rig)
    peer = rig.peer()  # a good offer after it runs
    connected = peer.send(op="connect", url=rig.url("/api/offer"), headers=AUTH)
    assert connected["status"] == 200, connected
    assert peer.send(op="echo").get("audio_bytes", 0) > 0
    healthy(rig, active=1)


@ISOLATIONS
def test_bad_offers_and_candidates_get_exact_errors_and_the_service_stays_healthy(
    rig_for: RigFactory, isolation: dict[str, str]
) -> None:
    rig = rig_for({"ALLOWED_ORIGINS": "http://app.example", **isolation})
    for body, status, code, detail in SDP_ERRORS:
        answer = rig.http("POST", "/api/offer", body, AUTH)
        assert answer == {"status": status, "body": {"error": code, "detail": detail}}, body
    patch = rig.http("PATCH", "/api/offer", {"pc_id": "nobody", "candidates": []}, AUTH)
    assert patch == {
        "status": 404,
        "body": {"error": "unknown_peer", "detail": "no peer connection 'nobody'"},
    }
    missing = rig.http("PATCH", "/api/offer", {"candidates": []}, AUTH)
    assert missing == {
        "status": 422,
        "body": {"error": "invalid_request", "detail": "pc_id: Field required"},
    }
    no_key = rig.http("POST", "/api/offer", {"sdp": "v=0", "type": "offer"})
    assert (no_key["status"], no_key["body"]["error"]) == (401, "unauthorized")
    foreign = rig.http(
        "POST", "/api/offer", {"sdp": "v=0", "type": "offer"}, {**AUTH, "origin": "http://evil"}
    )
    assert foreign == {
        "status": 403,
        "body": {
            "error": "forbidden_origin",
            "detail": "origin 'http://evil' is not in ALLOWED_ORIGINS",
        },
    }

    started = rig.http("POST", "/start", {"transport": "webrtc"}, AUTH)["body"]
    session_id = started["sessionId"]
    bad_token = rig.peer().send(
        op="connect", url=rig.url(f"/sessions/{session_id}/api/offer?token=wrong")
    )
    assert bad_token == {
        "status": 401,
        "body": {"error": "invalid_session_token", "detail": "the session token is not valid"},
    }
    endpoint = started["webrtcRequestParams"]["endpoint"]
    malformed = rig.http("POST", endpoint.removeprefix(rig.url("")), {"sdp": "x", "type": "offer"})
    assert malformed["body"]["error"] == "invalid_offer"
    # A malformed offer spends nothing: the session still waits, and a good one runs it.
    assert rig.http("GET", f"/sessions/{session_id}", headers=AUTH)["body"]["state"] == "pending"
    peer = rig.peer()
    connected = peer.send(op="connect", url=endpoint)
    assert connected["status"] == 200
    pc_id = connected["body"]["pc_id"]
    garbage = {"pc_id": pc_id, "candidates": [{"candidate": "garbage", "sdp_mid": "0"}]}
    assert rig.http("PATCH", f"/sessions/{session_id}/api/offer", garbage) == {
        "status": 422,
        "body": {
            "error": "invalid_candidate",
            "detail": "candidates.0.candidate is not an ICE candidate",
        },
    }
    other = rig.http("PATCH", "/sessions/other/api/offer", {"pc_id": pc_id, "candidates": []})
    assert (other["status"], other["body"]["error"]) == (404, "unknown_peer")
    unknown = rig.http(
        "PATCH", f"/sessions/{session_id}/api/offer", {"pc_id": "nobody", "candidates": []}
    )
    assert unknown == {
        "status": 404,
        "body": {
            "error": "unknown_peer",
            "detail": f"no peer connection 'nobody' in session {session_id}",
        },
    }
    assert rig.http("GET", "/sessions/nobody", headers=AUTH)["status"] == 404
    healthy(rig, active=1)
