"""The one way the tests and the benchmarks start a server process: `python -m app` (or the
benchmarks' baseline module) on a free loopback port.

Whatever the repository around it holds, the process sees only what its caller gives it:

- it runs in a scratch folder, not the repository, so no `.env` is read;
- the repository is first on `PYTHONPATH`, so `app`, `tests.bots` and `bench.bots` import;
- every botdock setting (each name in `Settings.model_fields`, in any case, as the service
  reads them) is removed from the inherited environment, with any other name the caller
  drops, so a value exported in the shell cannot change what is tested or measured;
- `HOST`, `PORT` and `PYTHONUNBUFFERED=1` (as the Dockerfile sets it) come next, then the
  caller's own variables;
- stdout and stderr go to one log file in the scratch folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

from app.config import Settings
from tests.project import ROOT

SETTINGS = frozenset(name.upper() for name in Settings.model_fields)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_environment(
    env: Mapping[str, str] | None = None, drop: Iterable[str] = ()
) -> dict[str, str]:
    """The inherited environment without botdock settings or the `drop` names (in any case),
    with the repository first on `PYTHONPATH`, then `env` on top."""
    dropped = SETTINGS | {name.upper() for name in drop}
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in dropped}
    pythonpath = os.pathsep.join(p for p in (str(ROOT), inherited.get("PYTHONPATH")) if p)
    return {**inherited, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1", **(env or {})}


def http_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """One `GET` on a fresh connection: the status code, or None if nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = f"GET {path} HTTP/1.1\r\nHost: launcher\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class ServiceProcess:
    """`python -m <module>` on a free loopback port; see the module docstring for what it
    inherits. With no `workdir`, it makes its own scratch folder and `discard()` removes it."""

    def __init__(
        self,
        module: str = "app",
        env: Mapping[str, str] | None = None,
        *,
        workdir: Path | None = None,
        drop: Iterable[str] = (),
        name: str = "service",
        prefix: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        """`prefix`: a command the process runs under (`ip netns exec <ns>`), with `host` the
        address it listens on there; the readiness polls run under it too."""
        self.module = module
        self.prefix = list(prefix)
        self.host = host
        self.port = free_port()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="botdock-"))
        self.log_path = self.workdir / f"{name}-{self.port}.log"
        self.env = child_environment({"HOST": host, "PORT": str(self.port), **(env or {})}, drop)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket base URL; the service's endpoint is `{ws_url}/ws`."""
        return f"ws://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not spawned"
        return self.proc.pid

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", self.module],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_answering(
        self, path: str = "/livez", timeout: float = 30.0, poll: float = 0.02
    ) -> float:
        """Poll `path` until it answers 200; return the seconds since the exec. Fails with the
        log's tail if the process exits first or `timeout` passes."""
        assert self.proc is not None, "not spawned"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.status(path) == 200:
                return time.monotonic() - self.started_at
            time.sleep(poll)
        raise RuntimeError(f"{self.module}: {path} not 200 after {timeout}s:\n{self.log_tail()}")

    def status(self, path: str) -> int | None:
        """One `GET` of `path`: its status, or None if nothing answers yet."""
        if not self.prefix:
            return http_status(self.port, path)
        probe = subprocess.run(
            [*self.prefix, sys.executable, "-c", _PROBE, self.host, str(self.port), path],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(probe.stdout) if probe.stdout.strip().isdigit() else None

    def start(self, path: str = "/livez", poll: float = 0.02) -> Self:
        self.spawn()
        self.wait_answering(path, poll=poll)
        return self

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None, "not spawned"
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the exit; its code (negative: killed by that signal)."""
        assert self.proc is not None, "not spawned"
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; kill only if it will not go. The exit code (None: never spawned)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process (all its threads), in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def discard(self) -> None:
        """Remove the log, and the scratch folder if this process made it."""
        self.log_path.unlink(missing_ok=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# `http_status` run where the service runs (under its prefix).
_PROBE = """
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with socket.create_connection((host, port), timeout=1) as sock:
        head = f"GET {path} HTTP/1.1\\r\\nHost: launcher\\r\\nConnection: close\\r\\n\\r\\n"
        sock.sendall(head.encode())
        parts = sock.recv(64).split(b" ", 2)
        print(int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else "")
except OSError:
    print("")
"""


def run_to_exit(
    module: str = "app",
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    drop: Iterable[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `python -m <module>` from a scratch folder, prepared like `ServiceProcess`, until it
    stops by itself (a start-up error); its output captured."""
    with tempfile.TemporaryDirectory(prefix="botdock-") as workdir:
        full_env = child_environment(
            {"HOST": "127.0.0.1", "PORT": str(free_port()), **(env or {})}, drop
        )
        return subprocess.run(
            [sys.executable, "-m", module],
            cwd=workdir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
