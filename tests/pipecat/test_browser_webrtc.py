"""The console talking to the RTVI echo bot over WebRTC through `@pipecat-ai/small-webrtc-
transport`: the fake microphone goes in, the bot's echo comes back (the page's peer connection
counts inbound audio bytes), and closing the page ends the session `completed`. With `API_KEY`
set, the key goes to `/start` and `/sessions` only, never with the offer. Both peers run
inside a network namespace the test creates (tests/pipecat/netns.py), never on the machine's
interfaces. The page is served on the namespace's loopback, a secure context where the
microphone may be opened."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Request, expect, sync_playwright

from tests import secrets
from tests.browser.chromium import ARGS, CHROMIUM
from tests.helpers import wait_for
from tests.pipecat.browser import RTVI_ECHO, final_state, needs_rtvi_echo_bot, open_console
from tests.pipecat.netns import Netns, netns
from tests.server import ServerProcess

pytestmark = needs_rtvi_echo_bot

# Keeps every RTCPeerConnection the page makes, to read its statistics.
PEER_TRACKER = """(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();"""

INBOUND_AUDIO_BYTES = """async () => {
  let total = 0;
  for (const pc of window.__peers) {
    (await pc.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") total += report.bytesReceived;
    });
  }
  return total;
}"""


def chromium_in(ns: Netns, folder: Path) -> Path:
    """Debian's Chromium run inside `ns`, as one executable path for Playwright to launch."""
    script = folder / "chromium"
    script.write_text(f'#!/bin/sh\nexec {" ".join(ns.prefix)} {CHROMIUM} "$@"\n')
    script.chmod(0o755)
    return script


def test_console_talks_over_webrtc_and_hears_the_echo_bot() -> None:
    with netns() as ns:
        server = ServerProcess({**RTVI_ECHO, "API_KEY": secrets.API_KEY}, prefix=ns.prefix)
        try:
            talk_and_close(server, ns)
            assert secrets.API_KEY not in server.log()
        finally:
            server.stop(timeout=10)
            server.discard()


def talk_and_close(server: ServerProcess, ns: Netns) -> None:
    server.spawn()
    server.wait_answering("/livez")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_in(ns, Path(folder))),
            args=[*ARGS, "--allow-loopback-in-peer-connection"],
        )
        page = chromium.new_page()
        page.add_init_script(PEER_TRACKER)
        paths: list[tuple[str, bool]] = []

        def seen(request: Request) -> None:
            paths.append((urlsplit(request.url).path, "authorization" in request.headers))

        page.on("request", seen)
        open_console(page, server)
        page.fill("#key", secrets.API_KEY)
        page.click("#key-save")
        expect(page.locator("#talk-start")).to_be_enabled()
        clicked = time.monotonic()
        page.click("#talk-start")
        expect(page.locator("#talk-state")).to_have_text("ready", timeout=20000)
        ready = time.monotonic()
        wait_for(lambda: page.evaluate(INBOUND_AUDIO_BYTES) > 0, timeout=20000)
        heard = time.monotonic()
        time.sleep(2)  # two more seconds of the fake microphone, echoed back
        print(
            f"\nWebRTC console: transport ready {ready - clicked:.2f}s after the click, first "
            f"bot audio after {heard - clicked:.2f}s, {page.evaluate(INBOUND_AUDIO_BYTES)} "
            "bytes of bot audio received 2s later"
        )
        sessions: list[dict[str, Any]] = json.loads(
            page.evaluate(
                "fetch('/sessions', {headers: {Authorization: "
                "`Bearer ${sessionStorage.getItem('botdock.apiKey')}`}}).then((r) => r.text())"
            )
        )["sessions"]
        [session] = sessions
        assert session["kind"] == "webrtc"
        assert {path for path, keyed in paths if keyed} == {"/start", "/sessions"}
        assert [path for path, _ in paths if "offer" in path], paths  # the offer went, keyless
        page.close(run_before_unload=True)  # as a person closes the tab: pagehide runs
        wait_for(lambda: final_state(server, session["sessionId"]) is not None, timeout=60)
        assert final_state(server, session["sessionId"]) == "completed"
        chromium.close()
