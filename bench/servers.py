"""Starting the service and the baseline the same way, and reading their CPU time and
memory from `/proc`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent

SERVICE = "service"
BASELINE = "baseline"
MODULES = {SERVICE: "app", BASELINE: "bench.baseline_app"}

# Every variable the service reads (in any case, as it does): dropped from the inherited
# environment so that a value exported in the caller's shell cannot change what is measured.
_SETTINGS = frozenset(name.upper() for name in Settings.model_fields) | {"STAMP_FILE"}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """One `GET` on a fresh connection: the status code, or None if nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class Server:
    """`python -m app` or `python -m bench.baseline_app` on a free loopback port.

    Both run with the same interpreter, from the same scratch directory (so no `.env` is
    read), with the repository on `PYTHONPATH`, and with stdout and stderr going to one log
    file, where every log line is one write as it would be to a container's pipe."""

    def __init__(self, kind: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"{kind}-{self.port}.log"
        inherited = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
        pythonpath = os.pathsep.join(p for p in (str(ROOT), inherited.get("PYTHONPATH")) if p)
        self.env = {
            **inherited,
            "PYTHONPATH": pythonpath,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", MODULES[self.kind]],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0, poll: float = 0.001) -> float:
        """Poll `/readyz` until it answers 200; return seconds since the exec."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if http_status(self.port, "/readyz") == 200:
                return time.monotonic() - self.started_at
            time.sleep(poll)
        raise RuntimeError(f"{self.kind} not ready after {timeout}s:\n{self.log_tail()}")

    def start(self) -> Server:
        self.spawn()
        self.wait_ready()
        return self

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process (all its threads), in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; kill only if it will not go."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def exited_cleanly(self) -> bool:
        """The service exits 0 after its drain; uvicorn (the baseline) re-raises the SIGTERM
        it caught once it has shut down, so it ends killed by SIGTERM."""
        assert self.proc is not None
        code = self.proc.returncode
        return code == 0 or (self.kind == BASELINE and code == -signal.SIGTERM)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
