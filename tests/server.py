"""The service under test as a real process (`python -m app`), started by the launcher: from a
scratch folder with no `.env`, with no botdock setting inherited from the shell, on a free
loopback port. Only the settings a test passes apply."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tests import launcher
from tests.launcher import ServiceProcess, free_port
from tests.project import ROOT

__all__ = ["ROOT", "ServerFactory", "ServerProcess", "free_port", "run_to_exit"]

# Read by tests/bots/recorder.py: set by the tests that want records, never inherited.
_TEST_BOT_VARIABLES = ("RECORD_FILE",)


class ServerProcess(ServiceProcess):
    """`python -m app` with the given settings (and test-bot variables)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        workdir: Path | None = None,
        prefix: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(
            "app", env, workdir=workdir, drop=_TEST_BOT_VARIABLES, prefix=prefix, host=host
        )


class ServerFactory(Protocol):
    """The `server_for` fixture: start a server with these settings; by default wait until
    `/livez` answers."""

    def __call__(
        self, env: Mapping[str, str] | None = None, wait: bool = True
    ) -> ServerProcess: ...


def run_to_exit(env: Mapping[str, str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m app` expecting it to stop by itself (a start-up error)."""
    return launcher.run_to_exit("app", env, timeout, drop=_TEST_BOT_VARIABLES)
