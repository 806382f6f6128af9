"""The load of the sessions-per-core scenario, run as its own process so its CPU time is its
own: `python -m bench.voice_client SPEC_JSON` writes one JSON result to the spec's `out` file
(a file, not stdout: a result of hundreds of kilobytes once came back from a pipe unreadable).

Each session is one WebSocket to `/ws` fed 20 ms frames of 16 kHz 16-bit mono audio (640
bytes) in Pipecat's protobuf serialization, on an absolute real-time schedule (frame k is due
at start + k * 20 ms, so a late frame does not push the next ones back). The echo comes back
as audio frames, possibly re-chunked or resampled by the bot's output transport, so a frame
is matched by position: frame k's echo has arrived when the audio received (counted at 16 kHz)
reaches the end of frame k. Its echo latency is that moment minus the moment it was sent.

Each session starts by sending frames every 20 ms until the first echoed audio: the time
from the WebSocket opening to it is the session's start time. The feed then pauses until the
echo stops (what is left in the bot's output chunking is counted and discounted), and the
real-time feed begins, so no start-up backlog stays in the echo latencies.

SPEC_JSON: `{"urls": [...], "seconds": float, "stagger": float, "out": path, "go": path}`;
`stagger` spreads the sessions' openings over that many seconds; with `go`, each session waits
after its start until that file exists, then begins its real-time feed (the sessions' feeds
spread over one frame's 20 ms), so the feed runs on a service that has settled. The result:
per session, its start time and the echo latencies of the real-time frames; the client's own
CPU seconds; errors.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from typing import Any

import aiohttp
from pipecat.frames.protobufs import frames_pb2

RATE = 16000
FRAME_SECS = 0.02
FRAME_BYTES = int(RATE * FRAME_SECS) * 2  # 16-bit mono
START_TIMEOUT_SECS = 60.0
GO_TIMEOUT_SECS = 300.0


def audio_frame(k: int) -> bytes:
    # A quiet tone, different per frame (a sine at 440 Hz, amplitude 1,000).
    samples = int(RATE * FRAME_SECS)
    pcm = bytearray()
    for i in range(samples):
        t = (k * samples + i) / RATE
        pcm += int(1000 * math.sin(2 * math.pi * 440 * t)).to_bytes(2, "little", signed=True)
    frame = frames_pb2.Frame()
    frame.audio.audio = bytes(pcm)
    frame.audio.sample_rate = RATE
    frame.audio.num_channels = 1
    data: bytes = frame.SerializeToString()
    return data


FRAMES = [audio_frame(k) for k in range(50)]  # one second, repeated


async def one_session(
    http: aiohttp.ClientSession,
    url: str,
    seconds: float,
    delay: float,
    go: str | None = None,
    phase: float = 0.0,
) -> dict[str, Any]:
    await asyncio.sleep(delay)
    result: dict[str, Any] = {"start": None, "latencies": [], "error": None}
    try:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            opened = time.monotonic()
            leftover = await first_echo(ws, opened, result)
            if go is not None:
                leftover = max(0.0, leftover - await wait_for_go(ws, go))
                await asyncio.sleep(phase)
            await realtime(ws, seconds, result, leftover)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


async def wait_for_go(ws: aiohttp.ClientWebSocketResponse, path: str) -> float:
    """Until the file `path` exists (the bench creates it once the service has settled),
    reading the socket meanwhile (aiohttp answers the server's pings only as it reads, and
    uvicorn closes a socket whose pings go unanswered); the audio bytes read, at 16 kHz."""
    received = 0.0
    async with asyncio.timeout(GO_TIMEOUT_SECS):
        while not os.path.exists(path):
            try:
                audio = await next_audio(ws, 0.05)
            except TimeoutError:
                continue
            if audio is None:
                raise RuntimeError("the WebSocket closed while the session waited to feed")
            received += audio
    return received


async def first_echo(
    ws: aiohttp.ClientWebSocketResponse, opened: float, result: dict[str, Any]
) -> float:
    """Frames every 20 ms until the first echoed audio (the session's start time); then the
    bytes sent but not echoed yet (held in the bot's output chunking), counted at 16 kHz."""
    sent = 0

    async def feed() -> None:
        nonlocal sent
        k = 0
        while True:
            await ws.send_bytes(FRAMES[k % len(FRAMES)])
            sent += FRAME_BYTES
            k += 1
            await asyncio.sleep(max(0.0, opened + k * FRAME_SECS - time.monotonic()))

    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(START_TIMEOUT_SECS):
            audio = await next_audio(ws, START_TIMEOUT_SECS)
    finally:
        feeder.cancel()
    if audio is None:
        raise RuntimeError("the WebSocket closed before the first echo")
    result["start"] = time.monotonic() - opened
    received = audio
    while True:  # what the bot still sends back of the start's frames
        try:
            more = await next_audio(ws, 0.3)
        except TimeoutError:
            break
        if more is None:
            raise RuntimeError("the WebSocket closed after the first echo")
        received += more
    return max(0.0, sent - received)


async def next_audio(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> float | None:
    """The next audio message's length in bytes at 16 kHz; None when the socket ends."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            continue
        if msg.type is not aiohttp.WSMsgType.BINARY:
            return None
        frame = frames_pb2.Frame()
        frame.ParseFromString(msg.data)
        if frame.WhichOneof("frame") == "audio":
            audio = frame.audio
            return len(audio.audio) * RATE / (audio.sample_rate or RATE)


async def realtime(
    ws: aiohttp.ClientWebSocketResponse, seconds: float, result: dict[str, Any], leftover: float
) -> None:
    """Feed frames on the real-time schedule for `seconds`; match each echo by position."""
    sent: list[float] = []
    latencies: list[float] = result["latencies"]
    begin = time.monotonic()
    stop = begin + seconds

    async def feed() -> None:
        k = 0
        while (due := begin + k * FRAME_SECS) < stop:
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            sent.append(time.monotonic())
            await ws.send_bytes(FRAMES[k % len(FRAMES)])
            k += 1

    feeder = asyncio.create_task(feed())
    received = -leftover  # bytes of 16 kHz audio echoed of the real-time frames
    try:
        while not (feeder.done() and len(latencies) >= len(sent)):
            try:
                audio = await next_audio(ws, max(0.5, stop + 2.0 - time.monotonic()))
            except TimeoutError:
                break
            if audio is None:
                break
            now = time.monotonic()
            received += audio
            while len(latencies) < len(sent) and (len(latencies) + 1) * FRAME_BYTES <= received + 1:
                latencies.append(now - sent[len(latencies)])
    finally:
        feeder.cancel()
    result["frames_sent"] = len(sent)
    result["frames_echoed"] = len(latencies)


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    urls: list[str] = spec["urls"]
    stagger = float(spec.get("stagger", 0.0))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sessions = await asyncio.gather(
            *(
                one_session(
                    http,
                    url,
                    spec["seconds"],
                    stagger * i / max(1, len(urls)),
                    spec.get("go"),
                    FRAME_SECS * i / max(1, len(urls)),  # after `go`: feeds spread over a frame
                )
                for i, url in enumerate(urls)
            )
        )
    return {"sessions": sessions}


if __name__ == "__main__":
    cpu0 = time.process_time()
    try:
        import uvloop

        out = uvloop.run(main(json.loads(sys.argv[1])))
    except ImportError:
        out = asyncio.run(main(json.loads(sys.argv[1])))
    out["cpu_seconds"] = time.process_time() - cpu0
    out["pid"] = os.getpid()
    with open(json.loads(sys.argv[1])["out"], "w") as result:
        json.dump(out, result)
