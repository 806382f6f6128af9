"""A network namespace of the test's own, for WebRTC: aiortc gathers no loopback ICE
candidates, so the service and the aiortc client both run inside a namespace holding a veth
pair on a private /30 (both ends inside, nothing reaches the host's network)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SERVER_ADDRESS = "10.77.0.1"
CLIENT_ADDRESS = "10.77.0.2"


@dataclass(frozen=True)
class Netns:
    name: str

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def netns() -> Iterator[Netns]:
    name = f"botdock-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "add", "bd0", "type", "veth", "peer", "name", "bd1")
        _ip("-n", name, "addr", "add", f"{SERVER_ADDRESS}/30", "dev", "bd0")
        _ip("-n", name, "addr", "add", f"{CLIENT_ADDRESS}/30", "dev", "bd1")
        for link in ("lo", "bd0", "bd1"):
            _ip("-n", name, "link", "set", link, "up")
        yield Netns(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
