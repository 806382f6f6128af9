"""The image and the compose project on a real Docker engine: what is (not) in the image, the
three session kinds through a published port, the drain on `docker stop`, and
`docker compose up --build --wait` / `watch` / `down`.

Run with `uv run pytest -m container` (deselected from the default run); it fails, never
skips, when no engine answers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.container.conftest import REPORT, BuiltImage, Container
from tests.container.engine import (
    RUN_ID,
    copy_project,
    docker,
    exercise_sessions,
    inspect,
    logs,
    session_line,
    wait_for_lines,
    wait_healthy,
    wait_live,
    wait_until,
)
from tests.server import free_port

pytestmark = pytest.mark.container

SLEEPY_BOT = Path(__file__).with_name("sleepy_bot.py")
DEFAULT_DRAIN_TIMEOUT_SECS = 300  # app.config's default, which compose's grace period must beat


def test_image_holds_no_env_file_tests_or_vcs_and_runs_as_non_root(image: BuiltImage) -> None:
    info = inspect(image.tag, kind="image")
    config = info["Config"]
    user = config["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"image user is {user!r}"
    assert docker("run", "--rm", "--entrypoint", "id", image.tag, "-u").stdout.strip() != "0"
    # Exec form, no shell in between: python is PID 1 and gets SIGTERM itself.
    assert config["Entrypoint"] is None
    assert config["Cmd"] == ["python", "-m", "app"]
    health = " ".join(config["Healthcheck"]["Test"])
    assert "/livez" in health and "curl" not in health and "PORT" in health
    labels = config["Labels"]
    for key in ("title", "description", "licenses", "version", "revision", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"OCI label {key} missing"

    # The service cannot change its own code or dependencies.
    writable = docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image.tag,
        "-c",
        "for p in /app /app/bot.py /app/app /opt/venv/bin; do "
        '{ touch "$p/.w" || touch "$p"; } 2>/dev/null && echo "$p"; done; true',
    ).stdout.split()
    assert writable == [], f"the service user can write {writable}"

    listing = set(
        docker("run", "--rm", "--entrypoint", "ls", image.tag, "-A", "/app").stdout.split()
    )
    assert {"app", "bot.py"} <= listing
    unwanted = {".env", ".env.production", ".git", ".venv", ".mypy_cache", "tests", ".github"}
    unwanted |= {"Dockerfile", "docker-compose.yml", "deploy", ".ci", "README.md"}
    assert not listing & unwanted, f"in /app: {sorted(listing & unwanted)}"

    # The canary was in the build context (so a leak would show) and is nowhere in the image.
    assert all(image.canary in (image.context / rel).read_text() for rel in image.planted)
    scan = docker(
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "sh",
        image.tag,
        "-c",
        'find / -xdev \\( -name ".env" -o -name ".env.*" -o -name CANARY \\) -print; '
        'grep -rlsF -- "$0" /app /opt /usr/local /etc /root /tmp /home || true',
        image.canary,
    )
    assert scan.stdout.strip() == "", f"found in the image:\n{scan.stdout}"


def test_container_serves_every_session_kind_on_its_port_read_only_and_non_root(
    image: BuiltImage, run_container: Callable[..., Container]
) -> None:
    # Not 8080: the healthcheck and the server must both follow PORT. Read-only root file
    # system, no capabilities: what deploy/kubernetes/deployment.yaml asks for.
    port = free_port()
    started = time.monotonic()
    container: Container = run_container(
        env={"PORT": str(port)},
        container_port=port,
        extra=[
            *("--read-only", "--tmpfs", "/tmp"),
            *("--cap-drop", "ALL", "--security-opt", "no-new-privileges"),
        ],
    )
    wait_healthy(container.name)
    REPORT.append(f"docker run: healthy {time.monotonic() - started:.1f} s after start")

    assert docker("exec", container.name, "id", "-u").stdout.strip() != "0"
    cmdline = docker("exec", container.name, "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0")[:3] == ["python", "-m", "app"], cmdline
    assert f"on 0.0.0.0:{port}" in logs(container.name)

    exercise_sessions(container.url, lambda: logs(container.name))


def test_docker_stop_drains_a_running_session_and_exits_0(
    image: BuiltImage, run_container: Callable[..., Container]
) -> None:
    """SIGTERM from `docker stop` starts the service's drain: the running session finishes (it
    has DRAIN_TIMEOUT_SECS), its final state is logged, and the exit code is 0 (not 137: the
    grace period was not used up)."""
    sleep_secs = 4.0
    grace_secs = 60
    container: Container = run_container(
        env={"BOT_MODULE": "sleepy_bot", "DRAIN_TIMEOUT_SECS": str(grace_secs - 15)},
        extra=["-v", f"{SLEEPY_BOT}:/app/sleepy_bot.py:ro"],
    )
    wait_live(container.url)
    started = httpx.post(f"{container.url}/start", json={"body": {"sleep": sleep_secs}}, timeout=10)
    assert started.status_code == 201, started.text
    session_id = started.json()["sessionId"]
    wait_for_lines(
        lambda: logs(container.name),
        [rf"\| {re.escape(session_id)} \|.*session started"],
        timeout=10,
    )

    stop_started = time.monotonic()
    docker("stop", "--time", str(grace_secs), container.name, timeout=grace_secs + 30)
    stop_secs = time.monotonic() - stop_started

    state = inspect(container.name)["State"]
    text = logs(container.name)
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']}\n{text}"
    assert not state["OOMKilled"]
    completed = re.search(session_line(session_id, "completed", "pipecat"), text)
    assert completed, (
        "expected the running session to finish during the drain and be logged as completed"
        f"\n--- logs\n{text}"
    )
    assert float(completed.group(1)) >= sleep_secs - 0.05
    assert re.search(rf"\| {re.escape(session_id)} \|.*sleepy bot finished its work", text)
    assert stop_secs < grace_secs
    REPORT.append(
        f"docker stop: drained a {sleep_secs:g} s session and exited 0 in {stop_secs:.1f} s"
    )


def test_compose_up_serves_sessions_watch_reloads_and_down_cleans_up(
    engine: str, tmp_path: Path
) -> None:
    project_dir = copy_project(tmp_path / "project")
    project = f"botdock-test-{RUN_ID}"
    host_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    env["HOST_PORT"] = str(host_port)
    url = f"http://127.0.0.1:{host_port}"
    project_label = f"com.docker.compose.project={project}"

    def compose(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return docker("compose", "-p", project, *args, cwd=project_dir, env=env, **kwargs)

    # Without a .env the file is valid (env_file is optional); with one, its settings apply.
    assert not (project_dir / ".env").exists()
    compose("config", "-q")
    (project_dir / ".env").write_text("MAX_SESSIONS=3\n")
    bot = project_dir / "bot.py"
    bot.write_text(bot.read_text() + CRASH_ON_REQUEST)

    try:
        started = time.monotonic()
        compose("up", "--build", "--wait", "--wait-timeout", "180", timeout=600)
        REPORT.append(f"docker compose up --build --wait: {time.monotonic() - started:.1f} s")

        container_id = compose("ps", "-q", "bot").stdout.strip()
        container = inspect(container_id)
        assert container["State"]["Health"]["Status"] == "healthy"
        assert container["Config"]["StopTimeout"] > DEFAULT_DRAIN_TIMEOUT_SECS
        assert httpx.get(f"{url}/health", timeout=5).json()["maxSessions"] == 3
        started = time.monotonic()
        exercise_sessions(url, lambda: compose("logs", "--no-color", "--no-log-prefix").stdout)
        REPORT.append(f"compose: session checks {time.monotonic() - started:.1f} s")
        _a_crash_restarts_the_service(url, container_id)

        _watch_syncs_bot_edits(project, project_dir, url, env)
    finally:
        started = time.monotonic()
        compose("down", "--rmi", "local", "--volumes", "--timeout", "30", check=False)
        REPORT.append(f"docker compose down: {time.monotonic() - started:.1f} s")
        # The images that watch's rebuilds replaced are untagged, so `down --rmi` misses them.
        docker("image", "prune", "-f", "--filter", f"label={project_label}", check=False)

    assert docker("ps", "-aq", "--filter", f"label={project_label}").stdout.split() == []
    assert docker("image", "ls", "-aq", "--filter", f"label={project_label}").stdout.split() == []


CRASH_ON_REQUEST = """

_echo = bot


async def bot(args):  # a plain session with {"crash": true} kills the whole process
    if getattr(args, "body", {}).get("crash"):
        import os

        os._exit(70)
    await _echo(args)
"""


def _a_crash_restarts_the_service(url: str, container_id: str) -> None:
    """`restart: unless-stopped`: a process that dies (here a bot's os._exit) comes back by
    itself and serves again."""
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{url}/bot", json={"crash": True}, timeout=10)
    started = time.monotonic()

    def serving_again() -> bool:
        if inspect(container_id)["RestartCount"] < 1:
            return False
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until("the crashed service to be restarted and ready", serving_again, 60)
    assert httpx.post(f"{url}/bot", json={}, timeout=10).json() == {}
    REPORT.append(f"compose: restarted after a crash in {time.monotonic() - started:.1f} s")


def _watch_syncs_bot_edits(project: str, project_dir: Path, url: str, env: dict[str, str]) -> None:
    """`docker compose watch`: an edit to bot.py rebuilds the image and replaces the container
    (here: a readyz() that says no turns /readyz to 503 while the service is not draining or
    full, so the answer comes from the new bot, not from the old container shutting down)."""
    watch_log = project_dir.parent / "watch.log"
    with open(watch_log, "w") as out:
        watch = subprocess.Popen(
            ["docker", "compose", "-p", project, "watch"],
            cwd=project_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, to get Ctrl-C as from a terminal
        )
    try:
        wait_until("compose watch to start", lambda: "Watch" in watch_log.read_text(), 60)
        bot = project_dir / "bot.py"
        bot.write_text(bot.read_text() + "\n\ndef readyz() -> bool:\n    return False\n")
        started = time.monotonic()

        def not_ready() -> bool:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                health = httpx.get(f"{url}/health", timeout=2).json()
            except (httpx.TransportError, ValueError):
                return False
            return ready.status_code == 503 and health["status"] == "ok"

        try:
            wait_until("the edited bot.py to be live", not_ready, 90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- compose watch\n{watch_log.read_text()}") from None
        REPORT.append(f"docker compose watch: edit live in {time.monotonic() - started:.1f} s")
    finally:
        # Ctrl-C goes to the terminal's whole process group: the docker CLI and its compose
        # plugin. (The CLI alone does not pass SIGINT on to the plugin.)
        os.killpg(watch.pid, signal.SIGINT)
        try:
            watch.wait(30)
        except subprocess.TimeoutExpired:
            watch.kill()
            watch.wait()
