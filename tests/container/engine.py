"""Small helpers around the `docker` CLI for the container test: run a command and fail with
its output, copy the project as a clean build context, wait for health, logs and the HTTP
server, and exercise the three session kinds against a base URL."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from tests import project

ROOT = project.ROOT
RUN_ID = uuid.uuid4().hex[:10]
LABEL = "com.botdock.test"  # every container and image the test makes carries LABEL=RUN_ID
ROOM_URL = "https://example.daily.co/container-test"
ECHO_BOT = ROOT / "tests" / "bots" / "echo.py"


def docker(
    *args: str,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`; on failure raise with the command's whole output."""
    proc = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`docker {' '.join(args)}` exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def inspect(*refs: str, kind: str = "") -> dict[str, Any]:
    args = [kind, "inspect"] if kind else ["inspect"]
    result: dict[str, Any] = json.loads(docker(*args, *refs).stdout)[0]
    return result


def logs(container: str) -> str:
    proc = docker("logs", container, check=False)
    return proc.stdout + proc.stderr


def copy_project(dest: Path) -> Path:
    """A copy of the project (`tests.project.copy_project`) to use as a build context, whose
    `bot.py` (the user's) is replaced by the template's echo bot: the image under test then
    behaves the same in any repository."""
    project.copy_project(dest)
    shutil.copyfile(ECHO_BOT, dest / "bot.py")
    return dest


def wait_until(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    """Call `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def wait_healthy(container: str, timeout: float = 90) -> float:
    """Wait for Docker's health status `healthy`; returns the seconds it took."""
    start = time.monotonic()

    def healthy() -> bool:
        state = inspect(container)["State"]
        if not state["Running"]:
            raise AssertionError(
                f"container {container} stopped (exit {state['ExitCode']}):\n{logs(container)}"
            )
        status = (state.get("Health") or {}).get("Status")
        if status == "unhealthy":
            raise AssertionError(f"{container} is unhealthy: {state['Health']}\n{logs(container)}")
        return status == "healthy"

    try:
        wait_until(f"{container} to be healthy", healthy, timeout, every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs(container)}") from None
    return time.monotonic() - start


def wait_live(base_url: str, timeout: float = 30) -> None:
    def live() -> bool:
        try:
            return httpx.get(f"{base_url}/livez", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(f"{base_url}/livez", live, timeout)


def wait_for_lines(read_logs: Callable[[], str], patterns: Sequence[str], timeout: float) -> str:
    """Wait until every regex in `patterns` matches the logs; fail listing the missing ones
    with the logs."""
    text = ""

    def all_found() -> bool:
        nonlocal text
        text = read_logs()
        return all(re.search(p, text) for p in patterns)

    try:
        wait_until("log lines", all_found, timeout, every=0.5)
    except AssertionError:
        missing = [p for p in patterns if not re.search(p, text)]
        raise AssertionError(f"log lines not found: {missing}\n--- logs\n{text}") from None
    return text


def session_line(session_id: str, state: str, kind: str) -> str:
    """The final-state line the service logs per session:
    `<time> | INFO | <session_id> | app.sessions | session completed kind=pipecat duration=…s`."""
    return rf"\| {re.escape(session_id)} \|.*session {state} kind={kind} duration=([0-9.]+)s"


def exercise_sessions(base_url: str, read_logs: Callable[[], str]) -> None:
    """Start a plain session (`POST /start`), a Daily-style Pipecat Cloud call (`POST /bot`
    with room headers) and a WebSocket echo session; check each one's answer and final
    state in the logs, and that the Daily token was not logged."""
    daily_id = f"daily-{uuid.uuid4()}"
    token = f"room-token-{uuid.uuid4().hex}"
    with httpx.Client(base_url=base_url, timeout=15) as http:
        assert http.get("/livez").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text

        started = http.post("/start", json={"body": {"from": "container-test"}})
        assert started.status_code == 201, started.text
        plain_id = started.json()["sessionId"]

        answered = http.post(
            "/bot",
            json={"greeting": "hi"},
            headers={
                "x-daily-session-id": daily_id,
                "x-daily-room-url": ROOM_URL,
                "x-daily-room-token": token,
            },
        )
        assert answered.status_code == 200, answered.text
        assert answered.json() == {}

    body = base64.b64encode(json.dumps({"from": "container-test"}).encode()).decode()
    ws_url = base_url.replace("http://", "ws://", 1) + f"/ws?body={body}"
    with connect(ws_url, open_timeout=10) as ws:
        for text in ("one", "two", "three"):
            ws.send(text)
            assert ws.recv(timeout=10) == text

    text = wait_for_lines(
        read_logs,
        [
            session_line(plain_id, "completed", "pipecat"),
            session_line(daily_id, "completed", "daily"),
            r"\| [0-9a-f-]{36} \|.*session completed kind=websocket duration=",
        ],
        timeout=20,
    )
    assert token not in text, "the Daily room token appeared in the logs"
    with httpx.Client(base_url=base_url, timeout=15) as http:
        assert http.get("/health").json()["activeSessions"] == 0
