"""Opening the listening socket before uvicorn starts, so that a `HOST` that does not
resolve or a `PORT` in use is a start-up error naming the variable (exit 2), not uvicorn's
own message and exit code."""

from __future__ import annotations

import socket


class ListenError(Exception):
    """The service cannot listen where the settings say; the message names HOST and PORT."""


def open_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket for `host:port` (uvicorn listens on it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ListenError(
            f"HOST={host!r} is not an address this machine can listen on: {exc}"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on HOST={host!r} PORT={port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock
