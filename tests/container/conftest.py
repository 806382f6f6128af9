"""Fixtures for the container test: a reachable engine (or a failure, never a skip), the image
built from a copy of the project with canary secrets planted in it, and containers that are
removed whatever happens."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.container.engine import LABEL, RUN_ID, copy_project, docker, inspect
from tests.server import free_port

# Lines for the "container report" section at the end of the run (image size, timings).
REPORT: list[str] = []
MB = 1_000_000


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("container report")
        for line in REPORT:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def engine() -> str:
    """The Docker engine's version. No engine is a failure: `-m container` asked for it."""
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the container test needs a Docker engine; `docker version`: {exc}")
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(
            "the container test needs a Docker engine, and none answers "
            f"(`docker version` exited {proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout.strip()


@dataclass
class BuiltImage:
    tag: str
    context: Path
    canary: str
    planted: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def image(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    """Build the image from a copy of the project in which a `.env` (and other files that
    must never be sent) hold a canary secret. The repository itself is never changed."""
    context = copy_project(tmp_path_factory.mktemp("context"))
    canary = f"canary-secret-{RUN_ID}"
    planted = [".env", ".env.production", ".venv/CANARY", ".git/CANARY", ".mypy_cache/CANARY"]
    for rel in planted:
        path = context / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"API_KEY={canary}\nDAILY_API_KEY={canary}\n")
    tag = f"botdock-test:{RUN_ID}"
    started = time.monotonic()
    docker("build", "--label", f"{LABEL}={RUN_ID}", "-t", tag, str(context), timeout=900)
    build_secs = time.monotonic() - started
    try:
        _report_size(tag, build_secs)
        yield BuiltImage(tag, context, canary, planted)
    finally:
        leftovers = docker("ps", "-aq", "--filter", f"label={LABEL}={RUN_ID}").stdout.split()
        if leftovers:
            docker("rm", "-f", *leftovers, check=False)
        docker("rmi", "-f", tag, check=False)


def _report_size(tag: str, build_secs: float) -> None:
    """Size of what the image adds on top of its base (the base here is a local stand-in,
    larger than the official image, so the total says little)."""
    info = inspect(tag, kind="image")
    base_ref = info["Config"]["Labels"]["org.opencontainers.image.base.name"]
    base = inspect(base_ref, kind="image")
    layers, base_layers = info["RootFS"]["Layers"], base["RootFS"]["Layers"]
    assert layers[: len(base_layers)] == base_layers, f"{tag} is not built on {base_ref}"
    added = info["Size"] - base["Size"]
    REPORT.append(
        f"image {tag}: {added / MB:.1f} MB in {len(layers) - len(base_layers)} layers on top of "
        f"{base_ref} ({base['Size'] / MB:.0f} MB here, a local stand-in); "
        f"{info['Size'] / MB:.0f} MB in all; built in {build_secs:.1f} s"
    )


@dataclass
class Container:
    name: str
    url: str
    port: int


@pytest.fixture
def run_container(image: BuiltImage) -> Iterator[Callable[..., Container]]:
    """`docker run -d` the image with a published loopback port; removed at the end."""
    names: list[str] = []

    def run(
        env: dict[str, str] | None = None,
        container_port: int = 8080,
        extra: list[str] | None = None,
    ) -> Container:
        name = f"botdock-test-{RUN_ID}-{len(names)}"
        host_port = free_port()
        names.append(name)
        args = ["run", "-d", "--name", name, "--label", f"{LABEL}={RUN_ID}"]
        args += ["-p", f"127.0.0.1:{host_port}:{container_port}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        docker(*args, *(extra or []), image.tag)
        return Container(name, f"http://127.0.0.1:{host_port}", host_port)

    yield run
    for name in names:
        docker("rm", "-f", name, check=False)
