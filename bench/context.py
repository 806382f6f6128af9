"""What every scenario gets: the run's mode, its scratch directory, and where errors go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import SERVICE, Server


@dataclass
class Context:
    quick: bool
    reps: int  # interleaved (baseline, service) pairs per scenario
    workdir: Path
    errors: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)  # non-default, per scenario
    service_env: dict[str, str] = field(default_factory=dict)  # --service-env: every service

    def server(self, kind: str, settings: dict[str, str] | None = None) -> Server:
        """A server of `kind` (not started); `settings` and `--service-env` apply to the
        service only: the baseline has no settings."""
        env = {**(settings or {}), **self.service_env} if kind == SERVICE else None
        return Server(kind, self.workdir, env)

    def error(self, scenario: str, message: str) -> None:
        """A scenario went wrong (failed requests, lost sessions): the run exits non-zero."""
        self.errors.append(f"{scenario}: {message}")
        print(f"  ERROR {scenario}: {message}", flush=True)

    def log(self, message: str) -> None:
        print(f"  {message}", flush=True)
