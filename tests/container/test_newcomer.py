"""The newcomer check: the README's two commands on a stock Debian 12 machine.

A container from `debian:bookworm` with nothing but Debian's python3 and pipx (see
newcomer.Dockerfile) gets uv the way the README says, `pipx install uv`, as an ordinary user in
a login shell. Each command then runs in its own clean export of the commit under test
(`git archive HEAD`: no .venv, no .env, nothing uncommitted):

- the run command, `uv run --no-dev python -m app`: it must answer /livez and POST /start on
  its port, install the runtime dependencies and nothing else, and exit 0 on SIGTERM;
- the test command, `uv run pytest`: the default suite must pass (exit 0; "no tests" fails).

Part of `uv run pytest -m container`: it fails, never skips, when something is missing. The
timings are printed in the "container report" section.
"""

from __future__ import annotations

import re
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.container.conftest import REPORT
from tests.container.engine import (
    LABEL,
    ROOT,
    RUN_ID,
    docker,
    session_line,
    wait_for_lines,
    wait_until,
)
from tests.server import free_port

pytestmark = pytest.mark.container

DOCKERFILE = Path(__file__).with_name("newcomer.Dockerfile")
HOME = "/home/newcomer"
RUN_COMMAND = "uv run --no-dev python -m app"
TEST_COMMAND = "uv run pytest"
STOCK_PYTHON = "/usr/bin/python3"  # Debian's; uv must use it, not download one
LOCAL_CA_DIR = "/usr/local/share/ca-certificates"
RUNTIME = {  # pyproject's [project] dependencies
    "fastapi",
    "uvicorn",
    "loguru",
    "python-dotenv",
    "pydantic-settings",
    "prometheus-client",
    "httpx",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def group_packages() -> set[str]:
    """Names listed in pyproject's dependency groups (dev: tests and bench; ci: lint tools)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names: set[str] = set()
    for group in pyproject["dependency-groups"].values():
        for requirement in group:
            names.add(normalize(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]))
    return names


@dataclass
class Machine:
    name: str
    port: int
    commit: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sh(
        self, script: str, *, cwd: str = HOME, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`script` as the newcomer in a login shell, as in a new terminal (Debian's
        ~/.profile puts ~/.local/bin, where pipx installs uv, on PATH)."""
        return docker(
            "exec", "-w", cwd, self.name, "bash", "-lc", script, timeout=timeout, check=check
        )

    def clone(self, name: str) -> str:
        """A clean export of the commit under test in ~/NAME; returns its path."""
        path = f"{HOME}/{name}"
        self.sh(f"mkdir {name} && tar -xf /tmp/botdock.tar -C {name}")
        present = self.sh("ls -A", cwd=path).stdout.split()
        assert "pyproject.toml" in present and "uv.lock" in present, present
        assert not {".venv", ".env"} & set(present), f"not a clean export: {present}"
        return path


@pytest.fixture(scope="module")
def newcomer(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """The newcomer's machine, running, with uv installed by pipx and the commit's tree
    (as a tar in /tmp) ready to be unpacked."""
    tmp = tmp_path_factory.mktemp("newcomer")
    commit = _git("rev-parse", "HEAD").strip()
    dirty = _git("status", "--porcelain", "--untracked-files=no").strip()
    archive = tmp / "botdock.tar"
    _git("archive", "--format=tar", "-o", str(archive), "HEAD")
    REPORT.append(
        f"newcomer: commit {commit[:12]}"
        + (" (uncommitted changes in the work tree are not part of the check)" if dirty else "")
    )

    tag = f"botdock-newcomer:{RUN_ID}"
    context = tmp / "context"  # the Dockerfile copies nothing from its context
    context.mkdir()
    started = time.monotonic()
    docker(
        "build", "--label", f"{LABEL}={RUN_ID}", "-t", tag, "-f", str(DOCKERFILE), str(context),
        timeout=900,
    )  # fmt: skip
    REPORT.append(
        f"newcomer: image (debian:bookworm + pipx) built in {time.monotonic() - started:.1f} s"
    )

    name = f"botdock-newcomer-{RUN_ID}"
    port = free_port()
    args = ["run", "-d", "--name", name, "--label", f"{LABEL}={RUN_ID}"]
    args += ["-p", f"127.0.0.1:{port}:8080"]
    # uv verifies TLS against its own bundled roots. Where the machine trusts an extra CA (see
    # newcomer.Dockerfile), point it at the system store, as uv's documentation says to do
    # behind a TLS-inspecting proxy. A stock network needs no such setting.
    extra_ca = docker("run", "--rm", tag, "find", LOCAL_CA_DIR, "-name", "*.crt").stdout.split()
    if extra_ca:
        args += ["-e", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
        REPORT.append(
            f"newcomer: {len(extra_ca)} extra CA certificate(s) here; uv uses the system store"
        )
    try:
        docker(*args, tag)
        docker("cp", str(archive), f"{name}:/tmp/botdock.tar")
        machine = Machine(name, port, commit)
        info = machine.sh("cat /etc/debian_version; python3 --version; id -un").stdout.split("\n")
        assert info[2] == "newcomer", info
        REPORT.append(f"newcomer: Debian {info[0]}, {info[1]} ({STOCK_PYTHON}), user {info[2]}")

        # The README's prerequisite. No uv before it, uv from ~/.local/bin after it.
        assert machine.sh("command -v uv", check=False).returncode != 0, "uv already installed"
        started = time.monotonic()
        machine.sh("pipx install uv", timeout=300)
        took = time.monotonic() - started
        where = machine.sh("command -v uv").stdout.strip()
        assert where == f"{HOME}/.local/bin/uv", where
        version = machine.sh("uv --version").stdout.strip()
        REPORT.append(f"newcomer: `pipx install uv` ({version}) took {took:.1f} s")
        yield machine
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", "-f", tag, check=False)


def test_readme_run_command_serves_with_runtime_dependencies_only(newcomer: Machine) -> None:
    project = newcomer.clone("run-check")
    log = f"{HOME}/run-check.log"
    started = time.monotonic()
    # `exec`: the pid written is uv's, which passes SIGTERM on to python (as Ctrl-C or a
    # process manager would reach it).
    app = subprocess.Popen(
        ["docker", "exec", "-w", project, newcomer.name, "bash", "-lc",
         f"echo $$ > /tmp/run.pid; exec {RUN_COMMAND} > {log} 2>&1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def output() -> str:
        return newcomer.sh(f"cat {log} 2>/dev/null || true").stdout

    try:

        def live() -> bool:
            if app.poll() is not None:
                raise AssertionError(f"`{RUN_COMMAND}` exited {app.returncode}:\n{output()}")
            try:
                return httpx.get(f"{newcomer.url}/livez", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(f"/livez from `{RUN_COMMAND}`", live, timeout=300, every=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- output\n{output()}") from None
        live_secs = time.monotonic() - started

        answer = httpx.post(
            f"{newcomer.url}/start", json={"body": {"from": "newcomer"}}, timeout=10
        )
        assert answer.status_code == 201, answer.text
        session_id = answer.json()["sessionId"]
        wait_for_lines(output, [session_line(session_id, "completed", "pipecat")], timeout=20)

        stopped = time.monotonic()
        newcomer.sh('kill -TERM "$(cat /tmp/run.pid)"')
        try:
            code = app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 60 s after SIGTERM:\n{output()}") from None
        stop_secs = time.monotonic() - stopped
    finally:
        if app.poll() is None:
            newcomer.sh('kill -KILL "$(cat /tmp/run.pid)"', check=False)
            app.wait(timeout=30)
    text = output()
    assert code == 0, f"`{RUN_COMMAND}` exited {code} on SIGTERM:\n{text}"
    assert f"interpreter at: {STOCK_PYTHON}" in text, f"uv did not use {STOCK_PYTHON}:\n{text}"

    # What the run command installed: the runtime dependencies and theirs, nothing from the
    # dev or ci groups (no pytest, mypy, ruff, ...).
    listed = newcomer.sh("uv pip list --format freeze", cwd=project).stdout.split()
    installed = {normalize(line.split("==")[0]) for line in listed}
    runtime_closure = newcomer.sh(
        "uv export --frozen --no-dev --no-hashes --no-header --no-emit-project --no-annotate",
        cwd=project,
    ).stdout
    allowed = {
        normalize(re.split(r"[\s\[=;]", line, maxsplit=1)[0])
        for line in runtime_closure.splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert installed >= RUNTIME, f"missing runtime dependencies: {sorted(RUNTIME - installed)}"
    assert installed <= allowed, f"not runtime dependencies: {sorted(installed - allowed)}"
    # (websockets is in the dev group and also a runtime dependency, through uvicorn[standard].)
    tools = (group_packages() - allowed) & installed
    assert not tools, f"the run command installed dev/ci packages: {sorted(tools)}"
    assert {"pytest", "mypy", "ruff"}.isdisjoint(installed)
    REPORT.append(
        f"newcomer: `{RUN_COMMAND}`: /livez 200 after {live_secs:.1f} s (cold: venv and "
        f"downloads), POST /start 201, exit 0 {stop_secs:.1f} s after SIGTERM; "
        f"{len(installed)} packages: {' '.join(sorted(listed))}"
    )


def test_readme_test_command_passes(newcomer: Machine) -> None:
    project = newcomer.clone("test-check")
    started = time.monotonic()
    result = newcomer.sh(TEST_COMMAND, cwd=project, timeout=1500, check=False)
    took = time.monotonic() - started
    text = result.stdout + result.stderr
    assert result.returncode == 0, f"`{TEST_COMMAND}` exited {result.returncode}:\n{text[-8000:]}"
    assert f"interpreter at: {STOCK_PYTHON}" in text, f"uv did not use {STOCK_PYTHON}:\n{text}"
    summary = re.findall(r"^=+ (.*\d+ passed.*) =+$", text, re.MULTILINE)
    assert summary, f"no pytest summary line with passed tests:\n{text[-3000:]}"
    REPORT.append(f"newcomer: `{TEST_COMMAND}` took {took:.1f} s: {summary[-1]}")


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"the newcomer check needs the project's git repository; "
            f"`git {' '.join(args)}`: {proc.stderr}"
        )
    return proc.stdout
