"""The service and the baseline, started the same way by the one launcher the tests use too
(`tests/launcher.py`: a scratch folder so no `.env` is read, the repository on `PYTHONPATH`,
every botdock setting dropped from the inherited environment, one log file), with their CPU
time and memory read from `/proc`."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from tests.launcher import ServiceProcess
from tests.project import ROOT

__all__ = ["BASELINE", "ROOT", "SERVICE", "Server"]

SERVICE = "service"
BASELINE = "baseline"
MODULES = {SERVICE: "app", BASELINE: "bench.baseline_app"}
# Read by bench/bots/stamp.py: set by the latency scenario, never inherited from the shell.
_BENCH_BOT_VARIABLES = ("STAMP_FILE",)


class Server(ServiceProcess):
    """`python -m app` or `python -m bench.baseline_app` on a free loopback port, logging to
    `workdir`; both with the same interpreter and environment."""

    def __init__(self, kind: str, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(MODULES[kind], env, workdir=workdir, drop=_BENCH_BOT_VARIABLES, name=kind)
        self.kind = kind

    def wait_ready(self, timeout: float = 30.0, poll: float = 0.001) -> float:
        """Poll `/readyz` every millisecond until it answers 200; return seconds since the
        exec."""
        return self.wait_answering("/readyz", timeout, poll)

    def start(self, path: str = "/readyz", poll: float = 0.001) -> Self:
        return super().start(path, poll)

    def exited_cleanly(self) -> bool:
        """The service exits 0 after its drain; uvicorn (the baseline) re-raises the SIGTERM
        it caught once it has shut down, so it ends killed by SIGTERM."""
        assert self.proc is not None
        code = self.proc.returncode
        return code == 0 or (self.kind == BASELINE and code == -signal.SIGTERM)
