#!/usr/bin/env bash
# tests/pipecat against the Pipecat of uv.lock (the `pipecat` group) and against the oldest
# 1.x, from PyPI. Both run in their own environment, .venv-pipecat, so the project's .venv
# (`uv run pytest`) never gets Pipecat. Extra arguments go to pytest.
#
# The 1.0 run layers `pipecat-ai==1.0.*` over the group with `uv run --with`: uv installs it
# in an ephemeral environment that comes first on sys.path, so `pipecat` is 1.0 there while
# pipecatcloud and the rest come from the lock. Its own dependencies are resolved when it
# runs (not locked); the test checks that the Pipecat it got is the one asked for.
#
# Both runs add the `browser` group: tests/pipecat/test_browser.py drives Pipecat's JS client in
# Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

export UV_PROJECT_ENVIRONMENT=.venv-pipecat

echo "== tests/pipecat with the locked Pipecat"
uv run --exact --group pipecat --group browser pytest tests/pipecat "$@"

echo "== tests/pipecat with Pipecat 1.0"
BOTDOCK_EXPECT_PIPECAT=1.0. \
    uv run --exact --group pipecat --group browser --with 'pipecat-ai[websocket,daily,webrtc]==1.0.*' \
    pytest tests/pipecat "$@"
