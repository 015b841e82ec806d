"""The wire server's listening socket (its own small module: `run` binds it before the engine is imported)."""

from __future__ import annotations

import socket


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: any free port) and listening; clients that connect before the
    server accepts wait in its backlog."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.settimeout(0.2)
    return sock
