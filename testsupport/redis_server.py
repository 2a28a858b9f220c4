"""A real redis-server for the fast tier: started once per session, emptied before each test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from scripts.ports import unused_port

START_TIMEOUT_S = 10.0


class RedisServer:
    """redis-server on a free port with data in ``directory``; like production's, but without
    persistence (nothing here outlives the session) and with ``hz 100`` for prompt blocking reads."""

    def __init__(self, directory: Path) -> None:
        self.port = unused_port()
        directory.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--hz",
            "100",
        ]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def flush(self) -> None:
        self.client().flushall()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
