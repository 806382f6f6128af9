"""`uv run python -m bench [--quick] [--json PATH] [--only NAME,...]`: run every scenario
against the service and the baseline, print the table, and write it as JSON.

Exits 1 if a scenario went wrong (failed requests, lost sessions, a crash), never because
of a figure: targets are reported, not asserted."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.context import Context
from bench.report import Row, markdown_table, text_table
from bench.scenarios import (
    cold_start,
    drain,
    idle,
    latency,
    sessions_per_core,
    throughput,
    websocket,
)
from bench.servers import ROOT

SCENARIOS: dict[str, ModuleType] = {
    "throughput": throughput,
    "latency": latency,
    "websocket": websocket,
    "idle": idle,
    "cold-start": cold_start,
    "drain": drain,
    "sessions-per-core": sessions_per_core,
}
PACKAGES = [
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "pydantic",
    "loguru",
    "aiohttp",
]


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


def raise_open_files() -> None:
    """1,000 WebSockets need 1,000 descriptors on each side; the children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def run_all(ctx: Context, names: list[str]) -> tuple[list[Row], dict[str, float]]:
    rows: list[Row] = []
    durations: dict[str, float] = {}
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            rows += await SCENARIOS[name].run(ctx)
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc)[-3:]).strip()
            ctx.error(name, f"crashed: {type(exc).__name__}: {exc}\n{detail}")
        durations[name] = round(time.monotonic() - started, 1)
        print(f"   ({durations[name]:.1f} s)", flush=True)
    return rows, durations


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, one pair (CI)")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--reps", type=int, help="interleaved pairs (default 3; quick 1)")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every service process, e.g. ACCESS_LOG=false (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    names = [n for n in SCENARIOS if n in wanted]
    reps = args.reps or (1 if args.quick else 3)
    stamp = datetime.now(UTC)
    out = args.json or ROOT / "bench" / "results" / (
        f"{'quick' if args.quick else 'full'}-{stamp:%Y%m%dT%H%M%SZ}.json"
    )

    raise_open_files()
    workdir = Path(tempfile.mkdtemp(prefix="botdock-bench-"))
    if any("=" not in item for item in args.service_env):
        parser.error("--service-env takes NAME=VALUE")
    overrides = dict(item.split("=", 1) for item in args.service_env)
    ctx = Context(quick=args.quick, reps=reps, workdir=workdir, service_env=overrides)
    info = machine()
    load_start = os.getloadavg()
    print(
        f"botdock bench ({'quick' if args.quick else 'full'}, {reps} pair(s) per scenario): "
        f"{info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"load {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}",
        flush=True,
    )
    if overrides:
        print(f"  service settings for every scenario: {overrides}")
    if load_start[0] > 0.5:
        print("  note: the machine is busy (1-minute load > 0.5); figures will be noisy")
    started = time.monotonic()
    try:
        import uvloop

        rows, durations = uvloop.run(run_all(ctx, names))
    except ImportError:
        rows, durations = asyncio.run(run_all(ctx, names))
    elapsed = time.monotonic() - started
    load_end = os.getloadavg()

    print()
    print(text_table(rows))
    result = {
        "mode": "quick" if args.quick else "full",
        "started": stamp.isoformat(timespec="seconds"),
        "duration_secs": round(elapsed, 1),
        "scenario_secs": durations,
        "pairs": reps,
        "machine": info,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "service_settings": ctx.settings,
        "service_env": overrides,
        "rows": [row.to_json() for row in rows],
        "markdown": markdown_table(rows),
        "errors": ctx.errors,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{elapsed:.0f} s; load {load_end[0]:.2f}; results written to {out}")
    if ctx.errors or args.keep:
        print(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if ctx.errors:
        print(f"{len(ctx.errors)} error(s):", file=sys.stderr)
        for error in ctx.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
