"""The server-worker channel (app/workers/protocol.py): frames round-trip, binary parts stay
bytes, and a closed or broken peer is `ChannelClosed`, never a hang or a half message."""

from __future__ import annotations

import socket

import pytest

from app.workers.protocol import HEADER, MAX_JSON_BYTES, Channel, ChannelClosed


async def pair() -> tuple[Channel, Channel, socket.socket]:
    ours, theirs = socket.socketpair()
    return await Channel.open(ours), await Channel.open(theirs), theirs


async def test_frames_round_trip_with_and_without_binary() -> None:
    a, b, _ = await pair()
    await a.send({"t": "ws", "text": "héllo"})
    await a.send({"t": "ws_send"}, b"\x00" * 70000)
    await a.send({"t": "ws_send"}, b"")
    assert await b.recv() == ({"t": "ws", "text": "héllo"}, None)
    assert await b.recv() == ({"t": "ws_send"}, b"\x00" * 70000)
    assert await b.recv() == ({"t": "ws_send"}, b"")
    a.close()
    b.close()


async def test_a_closed_peer_is_channel_closed() -> None:
    a, b, _ = await pair()
    a.close()
    with pytest.raises(ChannelClosed):
        await b.recv()
    b.close()


async def test_a_frame_that_is_not_a_message_closes_the_channel() -> None:
    a, b, raw = await pair()
    a.close()
    cases = [
        HEADER.pack(MAX_JSON_BYTES + 1, 0xFFFFFFFF),  # too large
        HEADER.pack(2, 0xFFFFFFFF) + b"[]",  # not an object
        HEADER.pack(3, 0xFFFFFFFF) + b"{x}",  # not JSON
        HEADER.pack(10, 0xFFFFFFFF) + b"{}",  # cut short
    ]
    for frame in cases:
        x, y = socket.socketpair()
        channel = await Channel.open(y)
        x.sendall(frame)
        x.close()
        with pytest.raises(ChannelClosed):
            await channel.recv()
        channel.close()
    b.close()
    raw.close()
