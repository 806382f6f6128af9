"""A SmallWebRTC client made of aiortc, run inside the test's network namespace
(`python -m tests.pipecat.webrtc_client`). It reads one JSON command a line on stdin and
answers one JSON line on stdout:

- `{"op": "http", "method", "url", "json"?, "headers"?}` → `{"status", "body"}`;
- `{"op": "connect", "url", "headers"?, "request_data"?, "trickle"?}`: an offer with an audio
  track playing a tone (and a data channel, as Pipecat's client opens one) → the answer's
  status and body; with `trickle`, the offer carries no candidates and they follow in a
  `PATCH` of the same URL (its status in `patch_status`);
- `{"op": "renegotiate"}` → the status and body of a new offer for the same peer (its
  `pc_id`), as Pipecat's client sends one;
- `{"op": "echo"}` → `{"audio_bytes"}`: waits until the connection is up and audio that is
  not silence came back (the bot's echo of the tone);
- `{"op": "wait_closed"}` → `{"closed_by"}`: waits until the service closes the peer;
- `{"op": "close"}` → `{}`: hangs up.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import sys
from typing import Any

import httpx
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

SAMPLE_RATE = 48000
SAMPLES = 960  # 20 ms


class Tone(AudioStreamTrack):  # type: ignore[misc]
    """A 440 Hz tone, in 20 ms frames at real-time pace."""

    def __init__(self) -> None:
        super().__init__()
        self._sent = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(SAMPLES / SAMPLE_RATE)
        samples = bytearray()
        for i in range(SAMPLES):
            value = int(8000 * math.sin(2 * math.pi * 440 * (self._sent + i) / SAMPLE_RATE))
            samples += value.to_bytes(2, "little", signed=True)
        frame = AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._sent += SAMPLES
        return frame


class Client:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.url = ""
        self.headers: dict[str, str] = {}
        self.pc_id: str | None = None
        self.audio_bytes = 0
        self.heard = asyncio.Event()
        self.closed = asyncio.Event()
        self.closed_by = ""
        self.listening: list[asyncio.Future[None]] = []

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.url, self.headers = cmd["url"], cmd.get("headers", {})
        self.pc.addTransceiver(Tone(), direction="sendrecv")
        channel = self.pc.createDataChannel("chat")

        @channel.on("message")
        def on_message(message: Any) -> None:
            if isinstance(message, str) and "peerLeft" in message:
                self.close_seen("peerLeft message")

        @channel.on("close")
        def on_channel_close() -> None:
            self.close_seen("data channel closed")

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.pc.connectionState in ("closed", "failed"):
                self.close_seen(f"connection {self.pc.connectionState}")

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                self.listening.append(asyncio.ensure_future(self.listen(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        candidates = []
        if cmd.get("trickle"):
            lines = sdp.replace("\r\n", "\n").split("\n")
            candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
            kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of"))]
            sdp = "\r\n".join(kept)
        offer: dict[str, Any] = {"sdp": sdp, "type": "offer"}
        if "request_data" in cmd:
            offer["requestData"] = cmd["request_data"]
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(self.url, json=offer, headers=self.headers)
            result: dict[str, Any] = {"status": response.status_code, "body": response.json()}
            if response.status_code != 200:
                return result
            answer = response.json()
            self.pc_id = answer["pc_id"]
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            if cmd.get("trickle"):
                mid = self.pc.getTransceivers()[0].mid
                patch = {
                    "pc_id": self.pc_id,
                    "candidates": [
                        {"candidate": c, "sdp_mid": mid, "sdp_mline_index": 0} for c in candidates
                    ]
                    + [{"candidate": "", "sdp_mid": mid, "sdp_mline_index": 0}],
                }
                patched = await http.patch(self.url, json=patch, headers=self.headers)
                result["patch_status"] = patched.status_code
                result["patch_body"] = patched.json()
                result["trickled"] = len(candidates)
        return result

    async def renegotiate(self) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {
            "sdp": self.pc.localDescription.sdp,
            "type": "offer",
            "pc_id": self.pc_id,
            "restart_pc": False,
        }
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(self.url, json=offer, headers=self.headers)
        answer = response.json()
        if response.status_code == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return {"status": response.status_code, "body": answer}

    async def listen(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                data = bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
                if any(data):  # silence is all zeros: only the echoed tone counts
                    self.audio_bytes += len(data)
                    self.heard.set()
        except Exception:
            return

    def close_seen(self, how: str) -> None:
        if not self.closed.is_set():
            self.closed_by = how
            self.closed.set()


async def http(cmd: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.request(
            cmd["method"], cmd["url"], json=cmd.get("json"), headers=cmd.get("headers", {})
        )
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


async def main() -> None:
    client = Client()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        try:
            async with asyncio.timeout(cmd.get("timeout", 60)):
                op = cmd["op"]
                if op == "http":
                    result = await http(cmd)
                elif op == "connect":
                    result = await client.connect(cmd)
                elif op == "renegotiate":
                    result = await client.renegotiate()
                elif op == "echo":
                    await client.heard.wait()
                    result = {"audio_bytes": client.audio_bytes}
                elif op == "wait_closed":
                    await client.closed.wait()
                    result = {"closed_by": client.closed_by}
                elif op == "close":
                    await client.pc.close()
                    result = {}
                else:
                    result = {"error": f"unknown op {op}"}
        except TimeoutError:
            result = {"error": f"{cmd.get('op')} timed out"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    await client.pc.close()


if __name__ == "__main__":
    asyncio.run(main())
