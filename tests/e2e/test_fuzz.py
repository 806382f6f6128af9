"""API fuzzing: schemathesis generates requests from the service's own OpenAPI schema and
runs them against the real process, with and without API_KEY. Every check is on: no 5xx, no
response outside the schema, schema-invalid input rejected. `FUZZ_EXAMPLES` sets the examples
per operation (quick default 15; the full mode in docs/reliability.md uses 150)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import secrets
from tests.server import ServerFactory

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
KEY = secrets.FUZZ_API_KEY
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.mark.parametrize("api_key", [None, KEY], ids=["open", "with-api-key"])
def test_fuzzing_finds_no_server_error_or_schema_violation(
    server_for: ServerFactory, api_key: str | None, tmp_path: Path
) -> None:
    env = {"BOT_MODULE": "tests.bots.echo", "MAX_SESSIONS": "10000"}
    if api_key:
        env["API_KEY"] = api_key
    server = server_for(env)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{server.url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(EXAMPLES),
        # One worker: with two, hypothesis' strategy descriptions hit a CPython 3.11.7 bug
        # ("AST constructor recursion depth mismatch") inside the fuzzer itself.
        "--workers", "1",
        "--seed", os.environ.get("FUZZ_SEED", "20261125"),
        "--generation-database", "none",
        "--no-color",
        # The WebRTC offer routes take an SDP offer, which no schema can describe (and answer
        # 501 without Pipecat's WebRTC extra, as here): tests/pipecat/test_webrtc.py and
        # tests/e2e/test_webrtc_unavailable.py test them.
        "--exclude-path-regex", "/api/offer$",
    ]  # fmt: skip
    if api_key:
        command += ["--header", f"Authorization: Bearer {api_key}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    counted = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counted, summary
    generated = int(counted.group(1))
    print(f"\nschemathesis ({'API_KEY' if api_key else 'open'}): {generated} requests generated")
    assert generated >= 9 * EXAMPLES  # nine operations, each fuzzed
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    if api_key:
        assert api_key not in server.log()
