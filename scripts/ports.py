"""Free TCP ports on 127.0.0.1: the one helper the stack runner, the tests and the benchmarks use."""

from __future__ import annotations

import socket


def is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_base_port(start: int, span: int = 5, step: int = 10) -> int:
    """First port >= start such that it and the next span - 1 are free (a stack's nginx, API, three Redis)."""
    port = start
    while not all(is_free(p) for p in range(port, port + span)):
        port += step
    return port


def unused_port() -> int:
    """A port the kernel just handed out and nobody listens on (for 'nothing answers here')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
